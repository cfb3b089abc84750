#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sim::fuzz_tcp::tcp_conn(data));
