//! UDP (RFC 768) datagrams and port demultiplexing for ustack.
