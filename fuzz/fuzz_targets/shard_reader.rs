#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fer_fuzz::checks::shard_reader(data));
