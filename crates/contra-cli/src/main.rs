//! `contra`: contrastive pretraining, evaluation and export from the command line. This file
//! only parses and dispatches; each command is one file of `commands/`, and the work is the
//! library's (`contra::workflow`).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod commands;
use commands::{embed, eval, export, info, pretrain, report, search};

#[derive(Parser)]
#[command(
    name = "contra",
    version,
    about = "Contrastive representation learning: pretrain an encoder on unlabeled data, then evaluate and export its embeddings."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress lines (training, embedding, the few-label table, t-SNE, SVM grids).
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain an encoder from a recipe (SimCLR, MoCo, NNCLR, SupCon, triplet; TS2Vec or those on time series), then compare it with the raw inputs: kNN on all labels, kNN and the linear probe with the recipe's few labels per class (and the RBF SVM for series); anomaly detection when trained on `data.train_classes` or on windows of sensor streams.
    Pretrain(pretrain::Args),
    /// Evaluate a trained model's embedding beside the raw inputs.
    #[command(subcommand)]
    Eval(eval::Command),
    /// Write embeddings (backbone features) of a data split as .npy files and as one
    /// safetensors index with item ids and labels (for `contra search`).
    Embed(embed::Args),
    /// The k nearest items of an embedding index (cosine, exact) to an item of the index or
    /// to an image file.
    Search(search::Args),
    /// Gather a run's recipe, training curves, evaluation tables (and fewshot.json if the run
    /// folder has one) and 2-D maps of its test embeddings (PCA, t-SNE) into report.html and
    /// report.md with PNG and SVG pictures, in RUN/report.
    Report(report::Args),
    /// Write a text model as a sentence-transformers folder (Hugging Face's BERT names).
    Export(export::Args),
    /// Show the build's backends and devices, and which data sets are found.
    Info(info::Args),
}

/// How long a rank waits for the others in one collective before ending the job
/// (`CONTRA_RANK_TIMEOUT`, seconds).
fn rank_timeout() -> std::time::Duration {
    let seconds = std::env::var("CONTRA_RANK_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    std::time::Duration::from_secs(seconds)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    contra::progress::set_enabled(!cli.quiet);
    // Under `mpirun -n N`: this process is one rank of N.
    if let Err(e) = contra::dist::join_launched(rank_timeout()) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let across = match &cli.command {
        Command::Pretrain(_) => true,
        Command::Embed(a) => !a.embeds_text_file(),
        _ => false,
    };
    if !across && contra::dist::rank_and_size().1 > 1 {
        eprintln!(
            "error: this command runs in one process (pretraining and `contra embed --model` run across processes): start it without mpirun"
        );
        contra::dist::abort(1);
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Pretrain(a) => pretrain::run(a),
        Command::Eval(c) => eval::run(c),
        Command::Embed(a) => embed::run(a),
        Command::Search(a) => search::run(a),
        Command::Report(a) => report::run(a),
        Command::Export(a) => export::run(a),
        Command::Info(a) => info::run(a),
    };
    match result {
        Ok(()) => {
            contra::dist::leave();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (rank, ranks) = contra::dist::rank_and_size();
            if ranks > 1 {
                eprintln!("error: rank {rank}: {e}");
                contra::dist::abort(1);
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
