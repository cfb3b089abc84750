use super::*;

#[test]
fn maps_to_linux_errno_and_kind() {
    let e: io::Error = SocketError::ConnectionRefused.into();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
    let e: io::Error = SocketError::WouldBlock.into();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    let e: SocketError = tcp::TcpError::ResetAfterFin.into();
    assert_eq!(e.errno(), libc::EPIPE, "a reset in CLOSE-WAIT is EPIPE");
    let e: SocketError = tcp::TcpError::Reset.into();
    assert_eq!(e.errno(), libc::ECONNRESET);
    assert!(
        SocketError::MessageTooBig(1500)
            .to_string()
            .contains("1500")
    );
}
