//! ResNet-18 (He et al. 2016, "Deep Residual Learning for Image Recognition") with basic
//! blocks, for 1 or 3 input channels, with either the ImageNet stem (7x7 stride-2 convolution
//! and 3x3 max-pool) or the CIFAR stem used by SimCLR for 32x32 images (3x3 stride-1
//! convolution, no max-pool). The classifier is left out: the output is the pooled 512-d
//! feature.

use super::global_avg_pool;
use crate::dist::batch_norm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stem {
    Cifar,
    ImageNet,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    norm: BatchNorm,
}

#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    downsample: Option<Downsample>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let downsample = (stride != 1 || cin != cout).then(|| Downsample {
            conv: conv(cin, cout, 1, stride, 0, device),
            norm: BatchNormConfig::new(cout).init(device),
        });
        Self {
            conv1: conv(cin, cout, 3, stride, 1, device),
            norm1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, 1, device),
            norm2: BatchNormConfig::new(cout).init(device),
            downsample,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => batch_norm(&d.norm, d.conv.forward(x.clone())),
            None => x.clone(),
        };
        let out = relu(batch_norm(&self.norm1, self.conv1.forward(x)));
        let out = batch_norm(&self.norm2, self.conv2.forward(out));
        relu(out + identity)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    stem_norm: BatchNorm,
    stem_pool: Option<MaxPool2d>,
    blocks: Vec<BasicBlock>,
}

#[derive(Clone, Debug)]
pub struct ResNetConfig {
    pub in_channels: usize,
    pub stem: Stem,
    pub layers: [usize; 4],
}

impl ResNetConfig {
    pub fn resnet18(in_channels: usize, stem: Stem) -> Self {
        Self {
            in_channels,
            stem,
            layers: [2, 2, 2, 2],
        }
    }

    pub fn init(&self, device: &Device) -> ResNet {
        let (stem, stem_pool) = match self.stem {
            Stem::Cifar => (conv(self.in_channels, 64, 3, 1, 1, device), None),
            Stem::ImageNet => (
                conv(self.in_channels, 64, 7, 2, 3, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
        };
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (stage, &n) in self.layers.iter().enumerate() {
            let cout = 64 << stage;
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(cin, cout, stride, device));
                cin = cout;
            }
        }
        ResNet {
            stem,
            stem_norm: BatchNormConfig::new(64).init(device),
            stem_pool,
            blocks,
        }
    }
}

impl ResNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(batch_norm(&self.stem_norm, self.stem.forward(x)));
        if let Some(p) = &self.stem_pool {
            x = p.forward(x);
        }
        for b in &self.blocks {
            x = b.forward(x);
        }
        global_avg_pool(x)
    }

    pub fn output_dim(&self) -> usize {
        self.blocks.last().map_or(64, |b| b.norm2.gamma.dims()[0])
    }
}
