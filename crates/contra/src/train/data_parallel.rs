//! The gradients of a data-parallel step: every rank's parameter gradients summed over the
//! ranks, flattened into buckets, one all-reduce per bucket and per step.

use crate::dist::Collective;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Floats per all-reduce (16 MiB): big enough to amortise each call, small enough to bound
/// the extra memory.
const BUCKET: usize = 4 << 20;

/// `grads` summed over the ranks of `group`, parameter by parameter (the model's order, the
/// same on every rank). A parameter keeps no gradient only where no rank computed one.
pub fn all_reduce_gradients<M: Module>(
    model: &M,
    mut grads: GradientsParams,
    group: &dyn Collective,
) -> GradientsParams {
    let mut flat = Flatten {
        grads: &mut grads,
        values: Vec::new(),
        params: Vec::new(),
        device: None,
    };
    model.visit(&mut flat);
    let Flatten {
        mut values,
        params,
        device,
        ..
    } = flat;
    let Some(device) = device else {
        return grads; // a model without parameters
    };
    // One presence flag per parameter travels with the values.
    let present_at = values.len();
    values.extend(params.iter().map(|p| f32::from(u8::from(p.present))));
    for bucket in values.chunks_mut(BUCKET) {
        group.all_reduce_sum(bucket);
    }
    let mut restore = Restore {
        grads: &mut grads,
        values: &values,
        present: &values[present_at..],
        params: &params,
        next: 0,
        device: &device,
    };
    model.visit(&mut restore);
    grads
}

struct Slot {
    id: ParamId,
    offset: usize,
    present: bool,
}

struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    values: Vec<f32>,
    params: Vec<Slot>,
    /// Where the gradients live (the first one's device, else the parameters').
    device: Option<Device>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let offset = self.values.len();
        let n: usize = param.val().dims().iter().product();
        let present = match self.grads.remove::<D>(param.id) {
            Some(g) => {
                self.device.get_or_insert_with(|| g.device());
                self.values.extend(crate::tensor_util::to_vec(g));
                true
            }
            None => {
                // The optimizer reads gradients off the autodiff graph anyway.
                self.device.get_or_insert_with(|| param.val().device());
                self.values.resize(offset + n, 0.0);
                false
            }
        };
        self.params.push(Slot {
            id: param.id,
            offset,
            present,
        });
    }
}

struct Restore<'a> {
    grads: &'a mut GradientsParams,
    values: &'a [f32],
    present: &'a [f32],
    params: &'a [Slot],
    next: usize,
    device: &'a Device,
}

impl ModuleVisitor for Restore<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let i = self.next;
        self.next += 1;
        let slot = &self.params[i];
        debug_assert_eq!(slot.id, param.id);
        if self.present[i] == 0.0 {
            return;
        }
        let shape = param.val().dims();
        let n: usize = shape.iter().product();
        let data = TensorData::new(self.values[slot.offset..slot.offset + n].to_vec(), shape);
        self.grads
            .register::<D>(param.id, Tensor::from_data(data, self.device));
    }
}
