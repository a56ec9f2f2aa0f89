//! Optimizers (SGD with momentum, AdamW, LARS) and the learning-rate schedule.
//!
//! contra keeps its own optimizers rather than burn's: LARS does not exist in burn, the update
//! rules here follow PyTorch's exactly (first momentum step `buf = g`, AdamW's decoupled decay,
//! epsilon 1e-8), and the state is keyed by parameter path so that checkpoints are plain
//! safetensors files that survive a rebuilt module.

pub mod lbfgs;
pub mod schedule;

use crate::error::{Error, Result};
use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `[optimizer]` table of a recipe: `kind` names the optimizer (`sgd` when left out),
/// the other keys are its own. `lr`, the peak learning rate (after warmup), is required;
/// values above 1 are allowed (LARS recipes).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// SGD with (Nesterov) momentum, as PyTorch's.
    Sgd(SgdConfig),
    /// AdamW with decoupled weight decay, as PyTorch's.
    Adamw(AdamWConfig),
    /// SGD with LARS's layer-wise trust ratio (You et al. 2017).
    Lars(LarsConfig),
}

/// `kind = "sgd"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Exclude one-dimensional parameters (biases, norm scales and shifts) from weight decay.
    pub exclude_bias_and_norm: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: MISSING_LR,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            exclude_bias_and_norm: true,
        }
    }
}

/// `kind = "adamw"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    /// Exclude one-dimensional parameters (biases, norm scales and shifts) from weight decay.
    pub exclude_bias_and_norm: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: MISSING_LR,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            exclude_bias_and_norm: true,
        }
    }
}

/// `kind = "lars"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LarsConfig {
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Trust coefficient.
    pub eta: f64,
    /// Exclude one-dimensional parameters (biases, norm scales and shifts) from weight decay
    /// and from the trust ratio, as the LARS paper and SimCLR do.
    pub exclude_bias_and_norm: bool,
}

impl Default for LarsConfig {
    fn default() -> Self {
        Self {
            lr: MISSING_LR,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            eta: 1e-3,
            exclude_bias_and_norm: true,
        }
    }
}

/// The learning rate of a table that gave none: refused by `validate`.
const MISSING_LR: f64 = f64::NAN;

impl OptimizerSpec {
    /// SGD at `lr` with `momentum` and `weight_decay`.
    pub fn sgd(lr: f64, momentum: f64, weight_decay: f64) -> Self {
        OptimizerSpec::Sgd(SgdConfig {
            lr,
            momentum,
            weight_decay,
            ..SgdConfig::default()
        })
    }

    /// AdamW at `lr` with `weight_decay` and PyTorch's betas and epsilon.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        OptimizerSpec::Adamw(AdamWConfig {
            lr,
            weight_decay,
            ..AdamWConfig::default()
        })
    }

    /// The peak learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerSpec::Sgd(c) => c.lr,
            OptimizerSpec::Adamw(c) => c.lr,
            OptimizerSpec::Lars(c) => c.lr,
        }
    }

    fn weight_decay(&self) -> f64 {
        match self {
            OptimizerSpec::Sgd(c) => c.weight_decay,
            OptimizerSpec::Adamw(c) => c.weight_decay,
            OptimizerSpec::Lars(c) => c.weight_decay,
        }
    }

    fn exclude_bias_and_norm(&self) -> bool {
        match self {
            OptimizerSpec::Sgd(c) => c.exclude_bias_and_norm,
            OptimizerSpec::Adamw(c) => c.exclude_bias_and_norm,
            OptimizerSpec::Lars(c) => c.exclude_bias_and_norm,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if lr.is_nan() {
            return Err(Error::config(
                "optimizer.lr",
                "missing: give the peak learning rate",
            ));
        }
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::config(
                "optimizer.lr",
                format!("{lr} must be a positive number"),
            ));
        }
        let momentum = match self {
            OptimizerSpec::Sgd(c) => c.momentum,
            OptimizerSpec::Lars(c) => c.momentum,
            OptimizerSpec::Adamw(c) => {
                if c.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
                    return Err(Error::config(
                        "optimizer.betas",
                        format!("{:?} must be in [0, 1)", c.betas),
                    ));
                }
                0.0
            }
        };
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::config(
                "optimizer.momentum",
                format!("{momentum} must be in [0, 1)"),
            ));
        }
        if self.weight_decay() < 0.0 {
            return Err(Error::config(
                "optimizer.weight_decay",
                "must not be negative",
            ));
        }
        Ok(())
    }
}

/// An optimizer with its per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    pub spec: OptimizerSpec,
    /// Learning-rate factors by parameter path prefix (first match wins).
    pub lr_scale: Vec<(String, f64)>,
    /// Number of steps taken.
    pub steps: u64,
    /// State tensors per parameter path (momentum buffer; or AdamW's two moments).
    state: BTreeMap<String, Vec<Tensor<1>>>,
}

impl Optimizer {
    pub fn new(spec: OptimizerSpec) -> Result<Self> {
        spec.validate()?;
        Ok(Self {
            spec,
            lr_scale: Vec::new(),
            steps: 0,
            state: BTreeMap::new(),
        })
    }

    /// The same optimizer with learning-rate factors by parameter path prefix: `("encoder",
    /// 0.1)` updates every parameter under `encoder.` at a tenth of the rate.
    pub fn with_lr_scale(mut self, lr_scale: Vec<(String, f64)>) -> Self {
        self.lr_scale = lr_scale;
        self
    }

    /// Apply one update with learning rate `lr` to every parameter that has a gradient.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        self.steps += 1;
        let mut mapper = StepMapper {
            opt: self,
            grads: &mut grads,
            lr,
            path: Vec::new(),
        };
        module.map(&mut mapper)
    }

    /// The state as named flat vectors with shapes, for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for (path, slots) in &self.state {
            for (i, t) in slots.iter().enumerate() {
                out.push((format!("{path}#{i}"), crate::tensor_util::to_vec(t.clone())));
            }
        }
        out
    }

    /// Restore state written by [`Optimizer::state_tensors`].
    pub fn load_state(
        &mut self,
        steps: u64,
        tensors: Vec<(String, Vec<f32>)>,
        device: &Device,
    ) -> Result<()> {
        self.steps = steps;
        self.state.clear();
        for (name, values) in tensors {
            let (path, slot) = name
                .rsplit_once('#')
                .and_then(|(p, s)| s.parse::<usize>().ok().map(|s| (p.to_string(), s)))
                .ok_or_else(|| {
                    Error::other(format!("optimizer state entry `{name}` has no slot number"))
                })?;
            let slots = self.state.entry(path).or_default();
            if slots.len() != slot {
                return Err(Error::other(format!(
                    "optimizer state entry `{name}` is out of order"
                )));
            }
            let n = values.len();
            slots.push(Tensor::from_data(
                burn::tensor::TensorData::new(values, [n]),
                device,
            ));
        }
        Ok(())
    }
}

struct StepMapper<'a> {
    opt: &'a mut Optimizer,
    grads: &'a mut GradientsParams,
    lr: f64,
    path: Vec<String>,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let p = tensor.inner();
        let grad = grad.inner();
        let key = self.path.join(".");
        let shape = p.dims();
        let flat: usize = shape.iter().product();
        let state: Vec<Tensor<D>> = self
            .opt
            .state
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.reshape(shape))
            .collect();
        // CLIP's and SigLIP's learnable scale and bias never decay (OpenCLIP's rule).
        let loss_parameter = self
            .path
            .last()
            .is_some_and(|n| crate::losses::clip::LOSS_PARAMETERS.contains(&n.as_str()));
        let excluded = loss_parameter || (D == 1 && self.opt.spec.exclude_bias_and_norm());
        let scale = self
            .opt
            .lr_scale
            .iter()
            .find(|(prefix, _)| key == *prefix || key.starts_with(&format!("{prefix}.")))
            .map_or(1.0, |(_, s)| *s);
        let (p, state) = update(
            &self.opt.spec,
            self.opt.steps,
            self.lr * scale,
            p,
            grad,
            state,
            excluded,
        );
        self.opt
            .state
            .insert(key, state.into_iter().map(|t| t.reshape([flat])).collect());
        let mut p = Tensor::from_inner(p);
        if require_grad {
            p = p.require_grad();
        }
        Param::from_mapped_value(id, p, mapper)
    }
}

/// One parameter's update; `state` is empty on the first step.
fn update<const D: usize>(
    spec: &OptimizerSpec,
    step: u64,
    lr: f64,
    p: Tensor<D>,
    mut g: Tensor<D>,
    mut state: Vec<Tensor<D>>,
    excluded: bool,
) -> (Tensor<D>, Vec<Tensor<D>>) {
    let wd = if excluded { 0.0 } else { spec.weight_decay() };
    let (momentum, nesterov, eta) = match spec {
        OptimizerSpec::Adamw(c) => {
            let [b1, b2] = c.betas;
            let p = if wd > 0.0 {
                p.mul_scalar(1.0 - lr * wd)
            } else {
                p
            };
            let (m, v) = if state.len() == 2 {
                let v = state.pop().unwrap();
                let m = state.pop().unwrap();
                (
                    m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1)),
                    v.mul_scalar(b2).add(g.powi_scalar(2).mul_scalar(1.0 - b2)),
                )
            } else {
                (
                    g.clone().mul_scalar(1.0 - b1),
                    g.powi_scalar(2).mul_scalar(1.0 - b2),
                )
            };
            let bc1 = 1.0 - b1.powi(step as i32);
            let bc2 = 1.0 - b2.powi(step as i32);
            let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
            let p = p - m.clone().div(denom).mul_scalar(lr / bc1);
            return (p, vec![m, v]);
        }
        OptimizerSpec::Sgd(c) => (c.momentum, c.nesterov, None),
        OptimizerSpec::Lars(c) => (c.momentum, c.nesterov, (!excluded).then_some(c.eta)),
    };
    if wd > 0.0 {
        g = g.add(p.clone().mul_scalar(wd));
    }
    if let Some(eta) = eta {
        g = g.clone().mul(trust_ratio(&p, &g, eta));
    }
    if momentum > 0.0 {
        let buf = match state.pop() {
            Some(b) => b.mul_scalar(momentum).add(g.clone()),
            None => g.clone(),
        };
        g = if nesterov {
            g.add(buf.clone().mul_scalar(momentum))
        } else {
            buf.clone()
        };
        (p - g.mul_scalar(lr), vec![buf])
    } else {
        (p - g.mul_scalar(lr), vec![])
    }
}

/// LARS's layer-wise trust ratio `eta * ||p|| / ||g||`, or 1 when either norm is zero,
/// shaped to broadcast over the parameter.
fn trust_ratio<const D: usize>(p: &Tensor<D>, g: &Tensor<D>, eta: f64) -> Tensor<D> {
    let pn = p.clone().powi_scalar(2).sum().sqrt();
    let gn = g.clone().powi_scalar(2).sum().sqrt();
    let valid = pn
        .clone()
        .greater_elem(0.0)
        .bool_and(gn.clone().greater_elem(0.0));
    let ratio = pn.mul_scalar(eta).div(gn.clamp_min(1e-30));
    let ones = ratio.ones_like();
    ones.mask_where(valid, ratio).reshape([1; D])
}
