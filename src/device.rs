//! Choosing where tensors live: the CPU by default, an NVIDIA GPU with `--features cuda`.

use candle_core::Device;

use crate::{Error, Result};

/// `"cpu"` or `"cuda"` / `"cuda:N"`. A CUDA request on a build without the `cuda` feature, or on a
/// machine without a usable GPU, is a clear error rather than a silent fall-back to the CPU.
pub fn select(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let ordinal: usize = match name.strip_prefix("cuda:") {
                Some(n) => n.parse().map_err(|_| Error::Input(format!("bad device {name:?}")))?,
                None => 0,
            };
            cuda(ordinal)
        }
        other => Err(Error::Input(format!("unknown device {other:?} (use \"cpu\" or \"cuda\")"))),
    }
}

#[cfg(feature = "cuda")]
fn cuda(ordinal: usize) -> Result<Device> {
    let device = Device::new_cuda(ordinal)
        // candle appends a backtrace to driver errors: keep the message line only.
        .map_err(|e| Error::Input(format!("no usable CUDA device {ordinal}: {}", crate::error::clean(&e))))?;
    // cudarc tracks every allocation with two CUDA events (created with the buffer, recorded on
    // each use, destroyed with it) so that several streams can share memory safely. Everything
    // here runs on candle's one stream, where stream order already guarantees that, and each
    // op allocates its output: the events were pure per-op overhead. Tensors created from here
    // on are untracked. `BERT_TASKS_CUDA_EVENTS=1` keeps the tracking (for benchmarks).
    if std::env::var("BERT_TASKS_CUDA_EVENTS").as_deref() != Ok("1") {
        if let Device::Cuda(d) = &device {
            // SAFETY: one stream only (see above); nothing was allocated on this device yet.
            unsafe { d.disable_event_tracking() };
        }
    }
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn cuda(_ordinal: usize) -> Result<Device> {
    Err(Error::Input(
        "this build has no CUDA support: rebuild with `--features cuda` (see scripts/build-cuda.sh)".into(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_checked() {
        assert!(super::select("cpu").unwrap().is_cpu());
        assert!(super::select("tpu").unwrap_err().to_string().contains("tpu"));
        #[cfg(not(feature = "cuda"))]
        assert!(super::select("cuda").unwrap_err().to_string().contains("--features cuda"));
    }
}
