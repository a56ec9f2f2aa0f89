//! Batches of augmented views, made in worker threads ahead of the trainer.
//!
//! A producer thread walks the epoch's shuffled order and fills each batch with a dedicated
//! pool of `workers` threads, keeping up to `prefetch` batches ready. The shuffle depends only
//! on (seed, epoch) and each view's randomness only on (seed, epoch, sample, view), so the
//! batches are identical at any thread count, and a resumed run can start at any batch.

use super::Pipeline;
use super::series::{Series, SeriesPipeline};
use crate::data::ImageDataset;
use crate::data::series::SeriesDataset;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::rng::Rng;
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SHUFFLE: u64 = 0x5348_5546;
const VIEW: u64 = 0x5649_4557;

/// Two (or more) augmented views of the same images, each `[batch, channels, height, width]`.
#[derive(Clone, Debug)]
pub struct ViewBatch {
    pub views: Vec<Vec<f32>>,
    pub indices: Vec<usize>,
    /// The run's seed and the epoch the batch belongs to (with `indices`, they name the rows
    /// for the random masks inside the networks).
    pub seed: u64,
    pub epoch: u64,
    pub labels: Option<Vec<u32>>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ViewBatch {
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
    pub fn shape(&self) -> [usize; 4] {
        [self.len(), self.channels, self.height, self.width]
    }
}

/// Training items as the sampler sees them: how many, and their classes where known.
pub trait Items {
    fn count(&self) -> usize;
    fn item_labels(&self) -> Option<&[u32]>;
}

impl Items for ImageDataset {
    fn count(&self) -> usize {
        self.len
    }
    fn item_labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
}

/// What the loader makes batches from: the training items and how their views are made.
pub trait BatchSource: Items + Send + Sync + 'static {
    type Batch: Send + 'static;
    /// The views of the items `indices` in epoch `epoch`, made on the current rayon pool.
    /// Their randomness may depend only on (`cfg.seed`, epoch, the items), so that the batch
    /// is the same at any thread count and a resumed run can start at any batch.
    fn make_batch(&self, cfg: &LoaderConfig, epoch: u64, indices: &[usize]) -> Result<Self::Batch>;
    /// The items of epoch `epoch` in batch order; whole batches are taken from its start.
    /// A function of (`cfg.seed`, epoch) alone, so that a resumed run sees the same batches.
    fn epoch_order(&self, cfg: &LoaderConfig, epoch: u64) -> Vec<usize> {
        epoch_order(cfg.seed, epoch, self, cfg.batch_size, cfg.per_class)
    }
}

/// Images and the pipeline that makes their views.
pub struct ImageViews {
    pub data: ImageDataset,
    pub pipeline: Pipeline,
}

impl Items for ImageViews {
    fn count(&self) -> usize {
        self.data.count()
    }
    fn item_labels(&self) -> Option<&[u32]> {
        self.data.item_labels()
    }
}

impl BatchSource for ImageViews {
    type Batch = ViewBatch;
    fn make_batch(&self, cfg: &LoaderConfig, epoch: u64, indices: &[usize]) -> Result<ViewBatch> {
        make_batch(&self.data, &self.pipeline, cfg, epoch, indices)
    }
}

/// Time series and the pipeline that makes their views, for the instance methods (SimCLR,
/// MoCo, ...). Each series is padded (NaN) to the longest one before augmentation; views are
/// `[batch, channels, 1, steps]`.
pub struct SeriesViews {
    pub data: SeriesDataset,
    pub pipeline: SeriesPipeline,
    /// The padded length.
    pub len: usize,
}

impl SeriesViews {
    pub fn new(data: SeriesDataset, pipeline: SeriesPipeline) -> Self {
        let len = data.lengths.iter().copied().max().unwrap_or(0);
        Self {
            data,
            pipeline,
            len,
        }
    }

    /// One view of series `index`: its randomness depends only on (seed, epoch, index, view).
    pub fn view(&self, seed: u64, epoch: u64, index: usize, view: usize) -> Series {
        let s = Series::new(
            self.data.channels,
            self.len,
            self.data.padded(index, self.len),
        );
        self.pipeline.apply(
            s,
            &mut Rng::derive(seed, &[VIEW, epoch, index as u64, view as u64]),
        )
    }
}

impl Items for SeriesViews {
    fn count(&self) -> usize {
        self.data.len()
    }
    fn item_labels(&self) -> Option<&[u32]> {
        self.data.labels.as_deref()
    }
}

impl BatchSource for SeriesViews {
    type Batch = ViewBatch;
    fn make_batch(&self, cfg: &LoaderConfig, epoch: u64, indices: &[usize]) -> Result<ViewBatch> {
        let c = self.data.channels;
        let steps = self.pipeline.output_len(self.len);
        let views = fill_views(cfg.views, c * steps, indices, |dst, i, v| {
            dst.copy_from_slice(&self.view(cfg.seed, epoch, i, v).values);
            Ok(())
        })?;
        Ok(ViewBatch {
            views,
            indices: indices.to_vec(),
            seed: cfg.seed,
            epoch,
            labels: labels_of(self.data.labels.as_deref(), indices),
            channels: c,
            height: 1,
            width: steps,
        })
    }
}

/// `views` buffers of `per` values an item, view `v` of item `i` written by `make(dst, i, v)`
/// in parallel on the current rayon pool.
fn fill_views(
    views: usize,
    per: usize,
    indices: &[usize],
    make: impl Fn(&mut [f32], usize, usize) -> Result<()> + Sync,
) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![vec![0f32; indices.len() * per]; views];
    for (v, buf) in out.iter_mut().enumerate() {
        buf.par_chunks_mut(per)
            .zip(indices.par_iter())
            .try_for_each(|(dst, &i)| make(dst, i, v))?;
    }
    Ok(out)
}

fn labels_of(labels: Option<&[u32]>, indices: &[usize]) -> Option<Vec<u32>> {
    labels.map(|l| indices.iter().map(|&i| l[i]).collect())
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub views: usize,
    pub workers: usize,
    pub prefetch: usize,
    pub seed: u64,
    /// 0: plain shuffle; K: class-balanced batches of `batch_size / K` classes x K items.
    pub per_class: usize,
}

/// The number of full batches in an epoch (the last partial batch is dropped, as SimCLR does).
pub fn batches_per_epoch(len: usize, batch_size: usize) -> usize {
    len / batch_size
}

/// The sample order of an epoch: a shuffle, or with `per_class = K` batches of
/// `batch_size / K` distinct classes with K items each (P x K sampling). Each batch draws its
/// classes at random; each class's items come in a shuffled order that starts over when used
/// up, so small classes repeat rather than run out.
pub fn epoch_order(
    seed: u64,
    epoch: u64,
    data: &(impl Items + ?Sized),
    batch_size: usize,
    per_class: usize,
) -> Vec<usize> {
    let mut rng = Rng::derive(seed, &[SHUFFLE, epoch]);
    let len = data.count();
    let labels = match (per_class, data.item_labels()) {
        (k, Some(l)) if k > 0 => l,
        _ => return rng.permutation(len),
    };
    let classes = labels.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &c)| by_class[c as usize].push(i));
    by_class.retain(|c| !c.is_empty());
    by_class.iter_mut().for_each(|c| rng.shuffle(c));
    let mut cursor = vec![0usize; by_class.len()];
    let classes_per_batch = (batch_size / per_class).min(by_class.len()).max(1);
    let mut order = Vec::with_capacity(len);
    while order.len() + batch_size <= len {
        let mut batch = Vec::with_capacity(batch_size);
        let classes = rng.permutation(by_class.len());
        for &c in classes.iter().take(classes_per_batch).cycle() {
            if batch.len() == batch_size {
                break;
            }
            for _ in 0..per_class.min(batch_size - batch.len()) {
                batch.push(by_class[c][cursor[c] % by_class[c].len()]);
                cursor[c] += 1;
            }
        }
        order.extend(batch);
    }
    order
}

/// One view of one sample: its randomness depends only on (seed, epoch, index, view). A
/// streamed image enters at its full size when the pipeline starts with a random resized
/// crop (the crop is cut before the image shrinks), fitted to the set's size otherwise.
pub fn make_view(
    data: &ImageDataset,
    pipeline: &Pipeline,
    seed: u64,
    epoch: u64,
    index: usize,
    view: usize,
) -> Result<Image> {
    let mut img = data.source_image(index)?;
    if data.is_streamed() && !pipeline.crops_first() {
        img = data.fit.apply(img, data.height, data.width);
    }
    Ok(pipeline.apply(
        img,
        &mut Rng::derive(seed, &[VIEW, epoch, index as u64, view as u64]),
    ))
}

/// Build one batch from sample indices, in parallel on the current rayon pool.
pub fn make_batch(
    data: &ImageDataset,
    pipeline: &Pipeline,
    cfg: &LoaderConfig,
    epoch: u64,
    indices: &[usize],
) -> Result<ViewBatch> {
    let (h, w) = pipeline.output_size(data.height, data.width);
    let c = data.channels;
    let views = fill_views(cfg.views, c * h * w, indices, |dst, i, v| {
        let img = make_view(data, pipeline, cfg.seed, epoch, i, v)?;
        dst.copy_from_slice(&img.data);
        Ok(())
    })?;
    Ok(ViewBatch {
        views,
        indices: indices.to_vec(),
        seed: cfg.seed,
        epoch,
        labels: labels_of(data.labels.as_deref(), indices),
        channels: c,
        height: h,
        width: w,
    })
}

/// The batches of one epoch, produced in the background. A batch that cannot be made (an
/// image file that no longer decodes) ends the epoch; [`EpochLoader::error`] then says why.
pub struct EpochLoader<B = ViewBatch> {
    rx: Option<Receiver<Result<B>>>,
    handle: Option<JoinHandle<()>>,
    /// Time the consumer spent blocked waiting for a batch.
    pub waited: Duration,
    failed: Option<Error>,
}

impl<B: Send + 'static> EpochLoader<B> {
    /// Start producing epoch `epoch` of `source` from batch `skip` on.
    pub fn start<S: BatchSource<Batch = B>>(
        source: Arc<S>,
        cfg: LoaderConfig,
        epoch: u64,
        skip: usize,
    ) -> Self {
        Self::start_shard(source, cfg, epoch, skip, (0, 1))
    }

    /// The same for rank `rank` of `ranks`: its share of every batch
    /// ([`share`](crate::dist::share)), made from the same epoch order.
    pub fn start_shard<S: BatchSource<Batch = B>>(
        source: Arc<S>,
        cfg: LoaderConfig,
        epoch: u64,
        skip: usize,
        (rank, ranks): (usize, usize),
    ) -> Self {
        let (tx, rx) = sync_channel(cfg.prefetch.max(1));
        let handle = std::thread::Builder::new()
            .name("contra-loader".into())
            .spawn(move || produce(source, cfg, epoch, skip, (rank, ranks), tx))
            .expect("spawning the loader thread");
        Self {
            rx: Some(rx),
            handle: Some(handle),
            waited: Duration::ZERO,
            failed: None,
        }
    }

    /// Why the epoch ended early, if a batch could not be made.
    pub fn error(&mut self) -> Option<Error> {
        self.failed.take()
    }
}

fn produce<S: BatchSource>(
    source: Arc<S>,
    cfg: LoaderConfig,
    epoch: u64,
    skip: usize,
    (rank, ranks): (usize, usize),
    tx: SyncSender<Result<S::Batch>>,
) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.workers.max(1))
        .thread_name(|i| format!("contra-augment-{i}"))
        .build()
        .expect("building the augmentation thread pool");
    let order = source.epoch_order(&cfg, epoch);
    let n = batches_per_epoch(source.count(), cfg.batch_size).min(order.len() / cfg.batch_size);
    for b in skip..n {
        let idx = &order[b * cfg.batch_size..(b + 1) * cfg.batch_size];
        let idx = &idx[crate::dist::share(idx.len(), rank, ranks)];
        let batch = pool.install(|| source.make_batch(&cfg, epoch, idx));
        let failed = batch.is_err();
        if tx.send(batch).is_err() || failed {
            return; // the trainer stopped listening, or this epoch cannot go on
        }
    }
}

impl<B> Iterator for EpochLoader<B> {
    type Item = B;
    fn next(&mut self) -> Option<B> {
        let t = Instant::now();
        let b = self.rx.as_ref()?.recv().ok();
        self.waited += t.elapsed();
        match b? {
            Ok(b) => Some(b),
            Err(e) => {
                self.failed = Some(e);
                self.rx.take();
                None
            }
        }
    }
}

impl<B> Drop for EpochLoader<B> {
    fn drop(&mut self) {
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_views_are_padded_augmented_and_repeat_exactly() {
        use crate::augment::series::{Crop, Jitter, SeriesAugmentation};
        // Three series of two channels, one shorter (padded with NaN to 10 steps).
        let data = SeriesDataset {
            channels: 2,
            values: vec![
                (0..20).map(|v| v as f32).collect(),
                (0..12).map(|v| v as f32).collect(),
                (0..20).map(|v| -(v as f32)).collect(),
            ],
            lengths: vec![10, 6, 10],
            labels: Some(vec![0, 1, 0]),
            class_names: vec!["a".into(), "b".into()],
        };
        let pipeline = SeriesPipeline::new(vec![
            SeriesAugmentation::Crop(Crop { length: 8 }),
            SeriesAugmentation::Jitter(Jitter { sigma: 0.1, p: 1.0 }),
        ])
        .unwrap();
        let source = SeriesViews::new(data, pipeline);
        let cfg = LoaderConfig {
            batch_size: 3,
            views: 2,
            workers: 1,
            prefetch: 1,
            seed: 5,
            per_class: 0,
        };
        let b = source.make_batch(&cfg, 1, &[2, 1]).unwrap();
        assert_eq!(b.shape(), [2, 2, 1, 8]);
        assert_eq!(b.labels.as_deref(), Some(&[0, 1][..]));
        assert_eq!(b.views[0].len(), 2 * 2 * 8);
        // Item 2's channel 0 is 0, -1, ..., -9: a crop of 8 consecutive steps, plus noise.
        let v = &b.views[0][..8];
        let start = -v[0].round();
        for (t, x) in v.iter().enumerate() {
            assert!((x + start + t as f32).abs() < 0.5, "{v:?}");
            assert!(x.fract() != 0.0, "no noise: {v:?}");
        }
        // The short series keeps its padding as NaN for the encoder to mask.
        assert!(b.views[0][16..].iter().any(|x| x.is_nan()));
        // The two views differ; the same (seed, epoch, items) give the same batch.
        assert_ne!(&b.views[0][..8], &b.views[1][..8]);
        let again = source.make_batch(&cfg, 1, &[2, 1]).unwrap();
        assert_eq!(format!("{:?}", again.views), format!("{:?}", b.views));
    }

    #[test]
    fn batches_do_not_depend_on_worker_count_and_skip_resumes_exactly() {
        let source = Arc::new(ImageViews {
            data: crate::data::digits::load().take(200),
            pipeline: Pipeline::simclr(8, vec![0.3], vec![0.3]),
        });
        let cfg = |workers| LoaderConfig {
            batch_size: 32,
            views: 2,
            workers,
            prefetch: 2,
            seed: 9,
            per_class: 0,
        };
        let one: Vec<ViewBatch> = EpochLoader::start(source.clone(), cfg(1), 3, 0).collect();
        let two: Vec<ViewBatch> = EpochLoader::start(source.clone(), cfg(2), 3, 0).collect();
        assert_eq!(one.len(), 6);
        for (a, b) in one.iter().zip(&two) {
            assert_eq!(a.views, b.views);
            assert_eq!(a.indices, b.indices);
        }
        let resumed: Vec<ViewBatch> = EpochLoader::start(source.clone(), cfg(2), 3, 4).collect();
        assert_eq!(resumed.len(), 2);
        assert_eq!(resumed[0].views, one[4].views);
        assert_ne!(
            one[0].views[0], one[0].views[1],
            "two views of the same image differ"
        );
        let other_epoch: Vec<ViewBatch> = EpochLoader::start(source, cfg(2), 4, 0).collect();
        assert_ne!(other_epoch[0].indices, one[0].indices);
    }
}

#[cfg(test)]
mod sampler_tests {
    use super::*;

    #[test]
    fn class_balanced_batches_hold_k_items_of_each_of_p_classes() {
        let data = crate::data::digits::load().take(500);
        let order = epoch_order(4, 0, &data, 32, 4);
        assert_eq!(order.len(), 500 / 32 * 32);
        let labels = data.labels.as_ref().unwrap();
        for batch in order.chunks(32) {
            let mut counts = std::collections::BTreeMap::new();
            batch
                .iter()
                .for_each(|&i| *counts.entry(labels[i]).or_insert(0) += 1);
            // 8 distinct classes x 4 items.
            assert_eq!(counts.len(), 8, "{counts:?}");
            assert!(counts.values().all(|&c| c == 4));
        }
        assert_eq!(order, epoch_order(4, 0, &data, 32, 4));
        assert_ne!(order, epoch_order(4, 1, &data, 32, 4));
        let mut plain = epoch_order(4, 0, &data, 32, 0);
        plain.sort_unstable();
        assert_eq!(plain, (0..500).collect::<Vec<_>>());
    }
}
