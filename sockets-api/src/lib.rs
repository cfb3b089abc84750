//! BSD-like descriptors and std::net-shaped types (`TcpListener`, `TcpStream`, `UdpSocket`) on top of the ustack `stack` crate.
