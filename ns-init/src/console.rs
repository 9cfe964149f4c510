//! The container console: the pts handed in by the host side becomes the controlling terminal and /dev/console.
