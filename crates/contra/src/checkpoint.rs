//! Module weights and training state as safetensors files, written atomically.
//!
//! Tensors are named by their module path (`encoder.blocks.0.conv.weight`), so a file can be
//! read back into a freshly built module, inspected with any safetensors reader, or loaded in
//! PyTorch. BatchNorm running statistics are included. Files are written to a temporary name
//! in the same folder, synced, then renamed over the old one, so a crash never leaves a
//! half-written checkpoint.

use crate::error::{Error, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// A named `f32` tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

struct Collect {
    path: Vec<String>,
    out: BTreeMap<String, HostTensor>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _c: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let data = crate::tensor_util::to_vec(t);
        self.out
            .insert(self.path.join("."), HostTensor { shape, data });
    }
}

/// Every float tensor of a module (parameters and running statistics) by path.
pub fn module_tensors<M: Module>(module: &M) -> BTreeMap<String, HostTensor> {
    let mut c = Collect {
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    // `valid()` folds pending BatchNorm running-statistic updates into their values; reading
    // the module directly could see statistics one step stale.
    module.valid().visit(&mut c);
    c.out
}

struct Assign<'a> {
    path: Vec<String>,
    prefix: &'a str,
    source: &'a HashMap<String, HostTensor>,
    error: Option<Error>,
    origin: &'a Path,
}

impl ModuleMapper for Assign<'_> {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _c: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let key = format!("{}{}", self.prefix, self.path.join("."));
        let shape = tensor.dims();
        let loaded = match self.source.get(&key) {
            None => Err(format!("tensor `{key}` is missing")),
            Some(h) if h.shape != shape => Err(format!(
                "tensor `{key}` has shape {:?}, the model expects {shape:?}",
                h.shape
            )),
            Some(h) => Ok(h),
        };
        let tensor = match loaded {
            Ok(h) => {
                let require_grad = tensor.is_require_grad();
                let device = tensor.device();
                let mut t = Tensor::<D>::from_data(TensorData::new(h.data.clone(), shape), &device);
                if require_grad {
                    t = t.require_grad();
                }
                t
            }
            Err(m) => {
                self.error
                    .get_or_insert_with(|| Error::format(self.origin, m));
                tensor
            }
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Load tensors named `prefix + path` into a module of the same structure.
pub fn load_module<M: Module>(
    module: M,
    tensors: &HashMap<String, HostTensor>,
    prefix: &str,
    origin: &Path,
) -> Result<M> {
    let mut a = Assign {
        path: Vec::new(),
        prefix,
        source: tensors,
        error: None,
        origin,
    };
    let m = module.map(&mut a);
    match a.error {
        Some(e) => Err(e),
        None => Ok(m),
    }
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Serialise named tensors and string metadata to safetensors and write them atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(k, b, s)| {
            (
                k.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("consistent tensor view"),
            )
        })
        .collect();
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata)
    };
    let out = safetensors::serialize(views, meta)
        .map_err(|e| Error::format(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &sorted_header(out))
}

/// A serialised safetensors file with its header's keys (tensors and metadata) in sorted
/// order: the crate writes them in a hash map's order, which changes from run to run, and
/// the same content should give the same bytes.
pub fn sorted_header(file: Vec<u8>) -> Vec<u8> {
    let parsed = file
        .get(..8)
        .map(|n| u64::from_le_bytes(n.try_into().expect("8 bytes")) as usize)
        .and_then(|n| {
            Some((
                n,
                serde_json::from_slice::<serde_json::Value>(file.get(8..8 + n)?).ok()?,
            ))
        });
    let Some((n, header)) = parsed else {
        return file;
    };
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(
                    entries.into_iter().map(|(k, v)| (k, sorted(v))).collect(),
                )
            }
            other => other,
        }
    }
    let mut text = serde_json::to_vec(&sorted(header)).expect("serialisable header");
    // The data start 8-aligned, padded with spaces as the format allows.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + file.len() - 8 - n);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text);
    out.extend(&file[8 + n..]);
    out
}

/// Read every `f32` tensor and the metadata of a safetensors file.
pub fn read_safetensors(
    path: &Path,
) -> Result<(HashMap<String, HostTensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let corrupt = |e: safetensors::SafeTensorError| {
        Error::format(path, format!("not a valid safetensors file: {e}"))
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
    let st = SafeTensors::deserialize(&bytes).map_err(corrupt)?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::format(
                path,
                format!("tensor `{name}` is {:?}; contra reads F32", view.dtype()),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}
