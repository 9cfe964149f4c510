//! ns-veth as a library: the stage's steps, used by its program and by ns-exec.
