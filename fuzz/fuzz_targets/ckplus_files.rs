#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fer_fuzz::checks::ckplus_files(data));
