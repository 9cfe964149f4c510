//! Network contexts handed from the host side (ns-veth) to the container side (ns-init).
