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
/// same on every rank). Only parameters that have a gradient on some rank travel (not a
/// momentum encoder's, nor running statistics); a parameter keeps no gradient only where no
/// rank computed one.
pub fn all_reduce_gradients<M: Module>(
    model: &M,
    mut grads: GradientsParams,
    group: &dyn Collective,
) -> GradientsParams {
    // Which parameters have a gradient anywhere: one flag each, summed.
    let mut slots = Slots {
        grads: &grads,
        slots: Vec::new(),
    };
    model.visit(&mut slots);
    let mut slots = slots.slots;
    let mut present: Vec<f32> = slots.iter().map(|s| f32::from(u8::from(s.here))).collect();
    group.all_reduce_sum(&mut present);
    for (slot, p) in slots.iter_mut().zip(&present) {
        slot.anywhere = *p > 0.0;
    }
    let mut pack = Pack {
        grads: &mut grads,
        slots: &slots,
        next: 0,
        values: Vec::new(),
        device: None,
    };
    model.visit(&mut pack);
    let (mut values, device) = (pack.values, pack.device);
    let Some(device) = device else {
        return grads; // no gradient on any rank
    };
    for bucket in values.chunks_mut(BUCKET) {
        group.all_reduce_sum(bucket);
    }
    let mut unpack = Unpack {
        grads: &mut grads,
        slots: &slots,
        next: 0,
        values: &values,
        offset: 0,
        device: &device,
    };
    model.visit(&mut unpack);
    grads
}

struct Slot {
    id: ParamId,
    /// This rank has a gradient for it.
    here: bool,
    /// Some rank has.
    anywhere: bool,
}

struct Slots<'a> {
    grads: &'a GradientsParams,
    slots: Vec<Slot>,
}

impl ModuleVisitor for Slots<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.slots.push(Slot {
            id: param.id,
            here: self.grads.get::<D>(param.id).is_some(),
            anywhere: false,
        });
    }
}

struct Pack<'a> {
    grads: &'a mut GradientsParams,
    slots: &'a [Slot],
    next: usize,
    values: Vec<f32>,
    /// Where the gradients live (the first one's device, else the parameters').
    device: Option<Device>,
}

impl ModuleVisitor for Pack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let slot = &self.slots[self.next];
        self.next += 1;
        debug_assert_eq!(slot.id, param.id);
        if !slot.anywhere {
            return;
        }
        match self.grads.remove::<D>(param.id) {
            Some(g) => {
                self.device.get_or_insert_with(|| g.device());
                self.values.extend(crate::tensor_util::to_vec(g));
            }
            None => {
                // The optimizer reads gradients off the autodiff graph anyway.
                self.device.get_or_insert_with(|| param.val().device());
                let n: usize = param.lazy_shape().num_elements();
                self.values.resize(self.values.len() + n, 0.0);
            }
        }
    }
}

struct Unpack<'a> {
    grads: &'a mut GradientsParams,
    slots: &'a [Slot],
    next: usize,
    values: &'a [f32],
    offset: usize,
    device: &'a Device,
}

impl ModuleVisitor for Unpack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let slot = &self.slots[self.next];
        self.next += 1;
        if !slot.anywhere {
            return;
        }
        let shape = param.lazy_shape();
        let n = shape.num_elements();
        let data = TensorData::new(self.values[self.offset..self.offset + n].to_vec(), shape);
        self.offset += n;
        self.grads
            .register::<D>(param.id, Tensor::from_data(data, self.device));
    }
}
