//! Explicit device selection: `cpu` (flex), `cuda:N`, `tch-cpu`, `tch-cuda:N`.
//!
//! contra never relies on `Device::default()`, which prefers CUDA whenever that feature is
//! compiled in.

use crate::error::{Error, Result};
use burn::prelude::Device;

/// The device names this build can use.
pub fn available() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("cpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda:N");
    }
    if cfg!(feature = "tch") {
        v.push("tch-cpu");
        v.push("tch-cuda:N");
    }
    v
}

/// The compiled-in backend features.
pub fn features() -> Vec<&'static str> {
    [
        ("flex", cfg!(feature = "flex")),
        ("cuda", cfg!(feature = "cuda")),
        ("tch", cfg!(feature = "tch")),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect()
}

fn index(name: &str, prefix: &str) -> Result<usize> {
    name[prefix.len()..].parse().map_err(|_| {
        Error::config(
            "device",
            format!("`{name}`: expected {prefix}N with N a GPU index"),
        )
    })
}

fn not_built(name: &str, feature: &str) -> Error {
    Error::config(
        "device",
        format!(
            "`{name}` needs the `{feature}` cargo feature, which this build lacks (rebuild with `--features {feature}`)"
        ),
    )
}

/// Parse a device name.
pub fn parse(name: &str) -> Result<Device> {
    let name = name.trim();
    match name {
        "cpu" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[cfg(not(feature = "flex"))]
            return Err(not_built(name, "flex"));
        }
        "tch-cpu" => {
            // burn 0.22 marks burn-tch deprecated; contra keeps it as an opt-in backend.
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Ok(Device::libtorch());
            #[cfg(not(feature = "tch"))]
            return Err(not_built(name, "tch"));
        }
        _ if name.starts_with("tch-cuda:") => {
            let _i = index(name, "tch-cuda:")?;
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Ok(Device::libtorch_cuda(_i));
            #[cfg(not(feature = "tch"))]
            return Err(not_built(name, "tch"));
        }
        _ if name.starts_with("cuda:") => {
            let _i = index(name, "cuda:")?;
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(_i));
            #[cfg(not(feature = "cuda"))]
            return Err(not_built(name, "cuda"));
        }
        _ => Err(Error::config(
            "device",
            format!("unknown device `{name}`; expected cpu, cuda:N, tch-cpu or tch-cuda:N"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_names_and_rejects_others() {
        assert!(super::parse("cpu").is_ok());
        let e = super::parse("gpu").unwrap_err().to_string();
        assert!(e.contains("unknown device `gpu`"), "{e}");
        let e = super::parse("cuda:x").unwrap_err().to_string();
        assert!(e.contains("cuda:N"), "{e}");
        if !cfg!(feature = "cuda") {
            assert!(
                super::parse("cuda:0")
                    .unwrap_err()
                    .to_string()
                    .contains("--features cuda")
            );
        }
    }
}
