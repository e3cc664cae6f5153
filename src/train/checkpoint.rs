//! Writing training state so that finished work is never lost: every file is written to a
//! temporary name and renamed into place; a checkpoint is a folder made complete under a
//! temporary name and renamed, and the `latest` pointer names it only afterwards. A crash at any
//! moment leaves the previous checkpoint intact and pointed to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use crate::model::weights::save_safetensors;
use crate::{Error, Result};

pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A model folder (config.json, tokenizer.json, model.safetensors) that loads in `Model::load`,
/// the browser and — for classify and tag-softmax — PyTorch's `from_pretrained`.
pub fn write_model(dir: &Path, tensors: &HashMap<String, Tensor>, config: &serde_json::Value, tokenizer: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    save_safetensors(tensors, DType::F32, &dir.join("model.safetensors"))?;
    let cfg = serde_json::to_vec_pretty(config).map_err(|e| Error::Config(e.to_string()))?;
    atomic_write(&dir.join("config.json"), &cfg)?;
    atomic_write(&dir.join("tokenizer.json"), tokenizer)
}

pub struct CheckpointDir {
    root: PathBuf,
}

impl CheckpointDir {
    pub fn new(out: &Path) -> Self {
        CheckpointDir { root: out.join("checkpoints") }
    }

    /// The folder the `latest` pointer names, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        let ptr = self.root.join("latest");
        match std::fs::read_to_string(&ptr) {
            Ok(name) => {
                let dir = self.root.join(name.trim());
                if dir.is_dir() {
                    Ok(Some(dir))
                } else {
                    Err(Error::Input(format!("{}: names {}, which does not exist", ptr.display(), dir.display())))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&ptr, e)),
        }
    }

    /// Writes a checkpoint for `step` with `write` filling a fresh folder, then points `latest`
    /// at it and removes older checkpoints.
    pub fn save(&self, step: usize, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        // A fresh name even when this step was saved before (a resumed run can save the same
        // step again): the folder `latest` names is never removed before the pointer moves.
        let mut name = format!("step-{step:08}");
        let mut n = 1;
        while self.root.join(&name).exists() {
            name = format!("step-{step:08}-{n}");
            n += 1;
        }
        let tmp = self.root.join(format!(".{name}.partial"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write(&tmp)?;
        let dir = self.root.join(&name);
        std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        atomic_write(&self.root.join("latest"), name.as_bytes())?;
        // Keep only the newest checkpoint folder (the pointer already names it).
        for entry in std::fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))?.flatten() {
            let p = entry.path();
            let n = entry.file_name().to_string_lossy().to_string();
            if p.is_dir() && n != name && (n.starts_with("step-") || n.ends_with(".partial")) {
                let _ = std::fs::remove_dir_all(&p);
            }
        }
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_save_leaves_latest_intact() {
        let out = std::env::temp_dir().join(format!("bt-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let c = CheckpointDir::new(&out);
        assert!(c.latest().unwrap().is_none());
        c.save(10, |d| atomic_write(&d.join("state.json"), b"{\"step\":10}")).unwrap();
        // A save that fails midway (the process dies while writing) ...
        let r = c.save(20, |d| {
            atomic_write(&d.join("state.json"), b"{\"st")?;
            Err(Error::Input("killed".into()))
        });
        assert!(r.is_err());
        // ... leaves the previous checkpoint as latest, complete.
        let latest = c.latest().unwrap().unwrap();
        assert!(latest.ends_with("step-00000010"));
        assert_eq!(std::fs::read_to_string(latest.join("state.json")).unwrap(), "{\"step\":10}");
        c.save(30, |d| atomic_write(&d.join("state.json"), b"30")).unwrap();
        assert!(c.latest().unwrap().unwrap().ends_with("step-00000030"));
        // Saving the same step again never removes the folder `latest` names first.
        let again = c.save(30, |d| atomic_write(&d.join("state.json"), b"30b")).unwrap();
        assert!(again.ends_with("step-00000030-1") && c.latest().unwrap().unwrap() == again);
        assert!(!out.join("checkpoints/step-00000010").exists(), "older checkpoints are pruned");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
