#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hygie_fuzz::image_reference(data));
