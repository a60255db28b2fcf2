//! Bytes → `config.json` parse → validate: must return Ok or Err, never panic, abort, hang or
//! exhaust memory; a config that validates must also survive the RoPE helpers the loader runs.
//! (The tensor inventory is not built here: a config within its limits may still describe
//! millions of tensors, which the loader only lists after checking the checkpoint's extent.)
#![no_main]

use concord_loader::ModelConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = ModelConfig::from_json_str(text) else {
        return;
    };
    if cfg.validate().is_ok() {
        let _ = cfg.rope_inv_freq();
        let _ = cfg.rope_attention_factor();
        let _ = cfg.softmax_scale();
        let _ = cfg.yarn_correction_range();
    }
});
