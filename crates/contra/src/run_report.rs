//! The page `contra report` writes for a run: its recipe, training curves, evaluation tables
//! and maps of the embedding, as one HTML page and one Markdown page beside PNG and SVG
//! pictures, all in one folder that opens offline.

use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};
use crate::plot::PALETTE;
use crate::plot::chart::{Panel, Series};
use std::path::Path;

/// The curves in a run's metrics.jsonl.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    /// (step, loss) of every step.
    pub loss: Vec<(f64, f64)>,
    /// (step at the epoch's end, mean loss of the epoch).
    pub epoch_loss: Vec<(f64, f64)>,
    pub lr: Vec<(f64, f64)>,
    /// (epoch, online kNN accuracy).
    pub knn: Vec<(f64, f64)>,
    /// (step, effective rank) from the diagnostics records.
    pub effective_rank: Vec<(f64, f64)>,
    /// Last logged images per second.
    pub images_per_second: Option<f64>,
}

/// Read metrics.jsonl; a line that is not a JSON object is an error naming the line.
pub fn read_curves(path: &Path) -> Result<Curves> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut c = Curves::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::format(path, format!("line {}: not a JSON record: {e}", i + 1)))?;
        let num = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let Some(step) = num("step") else {
            return Err(Error::format(
                path,
                format!("line {}: a record without \"step\"", i + 1),
            ));
        };
        if let Some(l) = num("loss") {
            c.loss.push((step, l));
        }
        if let Some(l) = num("epoch_mean_loss") {
            c.epoch_loss.push((step, l));
        }
        if let Some(l) = num("lr") {
            c.lr.push((step, l));
        }
        if let Some(r) = num("images_per_second") {
            c.images_per_second = Some(r);
        }
        if let (Some(a), Some(e)) = (num("knn_accuracy"), num("epoch")) {
            c.knn.push((e + 1.0, a));
        }
        if let Some(r) = v
            .get("diagnostics")
            .and_then(|d| d.get("effective_rank"))
            .and_then(|x| x.as_f64())
        {
            c.effective_rank.push((step, r));
        }
    }
    Ok(c)
}

fn series(name: &str, points: &[(f64, f64)], color: usize, markers: bool) -> Series {
    Series {
        name: name.into(),
        points: points.to_vec(),
        color: PALETTE[color],
        markers,
    }
}

/// Loss and learning rate always; kNN accuracy and effective rank where they were logged.
pub fn curve_panels(c: &Curves) -> Vec<Panel> {
    let mut panels = vec![
        Panel {
            title: "training loss".into(),
            x_label: "step".into(),
            series: vec![
                series("step", &c.loss, 0, false),
                series("epoch mean", &c.epoch_loss, 1, true),
            ],
        },
        Panel {
            title: "learning rate".into(),
            x_label: "step".into(),
            series: vec![series("lr", &c.lr, 2, false)],
        },
    ];
    if !c.knn.is_empty() {
        panels.push(Panel {
            title: "kNN monitor accuracy".into(),
            x_label: "epoch".into(),
            series: vec![series("kNN", &c.knn, 3, true)],
        });
    }
    if !c.effective_rank.is_empty() {
        panels.push(Panel {
            title: "effective rank".into(),
            x_label: "step".into(),
            series: vec![series("rank", &c.effective_rank, 4, true)],
        });
    }
    panels
}

/// A piece of the page.
#[derive(Clone, Debug)]
pub enum Block {
    Heading(String),
    Paragraph(String),
    /// A picture in the page's folder, with its caption.
    Image {
        file: String,
        caption: String,
    },
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Code(String),
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page as HTML: no external resources; a small script records on `<body>` how many
/// images loaded (`data-images-loaded` of `data-images-total`), for headless checks.
pub fn to_html(title: &str, blocks: &[Block]) -> String {
    let mut body = format!("<h1>{}</h1>\n", html_escape(title));
    for b in blocks {
        match b {
            Block::Heading(h) => body += &format!("<h2>{}</h2>\n", html_escape(h)),
            Block::Paragraph(p) => body += &format!("<p>{}</p>\n", html_escape(p)),
            Block::Image { file, caption } => {
                body += &format!(
                    "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                    html_escape(file),
                    html_escape(caption),
                    html_escape(caption)
                )
            }
            Block::Table { header, rows } => {
                body += "<table>\n<tr>";
                header
                    .iter()
                    .for_each(|h| body += &format!("<th>{}</th>", html_escape(h)));
                body += "</tr>\n";
                for r in rows {
                    body += "<tr>";
                    r.iter()
                        .for_each(|c| body += &format!("<td>{}</td>", html_escape(c)));
                    body += "</tr>\n";
                }
                body += "</table>\n";
            }
            Block::Code(c) => body += &format!("<pre>{}</pre>\n", html_escape(c)),
        }
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{t}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
figure {{ margin: 1em 0; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style>
<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
}});
</script>
</head>
<body>
{body}</body>
</html>
"#,
        t = html_escape(title)
    )
}

pub fn to_markdown(title: &str, blocks: &[Block]) -> String {
    let mut s = format!("# {title}\n\n");
    for b in blocks {
        match b {
            Block::Heading(h) => s += &format!("## {h}\n\n"),
            Block::Paragraph(p) => s += &format!("{p}\n\n"),
            Block::Image { file, caption } => s += &format!("![{caption}]({file})\n\n"),
            Block::Table { header, rows } => {
                s += &format!("| {} |\n", header.join(" | "));
                s += &format!("|{}\n", "---|".repeat(header.len()));
                for r in rows {
                    s += &format!("| {} |\n", r.join(" | ").replace('\n', " "));
                }
                s.push('\n');
            }
            Block::Code(c) => s += &format!("```toml\n{c}\n```\n\n"),
        }
    }
    s
}

/// Write `report.html` and `report.md` into `dir` (pictures are already there).
pub fn write_pages(dir: &Path, title: &str, blocks: &[Block]) -> Result<()> {
    write_atomic(&dir.join("report.html"), to_html(title, blocks).as_bytes())?;
    write_atomic(
        &dir.join("report.md"),
        to_markdown(title, blocks).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_read_and_bad_lines_named() {
        let dir = std::env::temp_dir().join(format!("contra-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("metrics.jsonl");
        std::fs::write(
            &p,
            concat!(
                "{\"step\":1,\"epoch\":0,\"loss\":3.0,\"lr\":0.1,\"images_per_second\":100.0}\n",
                "{\"step\":2,\"epoch\":0,\"loss\":2.5,\"lr\":0.2,\"images_per_second\":120.0}\n",
                "{\"step\":2,\"epoch\":0,\"diagnostics\":{\"effective_rank\":7.5}}\n",
                "{\"step\":2,\"epoch\":0,\"epoch_mean_loss\":2.75}\n",
                "{\"step\":2,\"epoch\":0,\"knn_accuracy\":0.5}\n",
            ),
        )
        .unwrap();
        let c = read_curves(&p).unwrap();
        assert_eq!(c.loss, vec![(1.0, 3.0), (2.0, 2.5)]);
        assert_eq!(c.epoch_loss, vec![(2.0, 2.75)]);
        assert_eq!(c.knn, vec![(1.0, 0.5)]);
        assert_eq!(c.effective_rank, vec![(2.0, 7.5)]);
        assert_eq!(c.images_per_second, Some(120.0));
        assert_eq!(curve_panels(&c).len(), 4);
        std::fs::write(&p, "{\"step\":1,\"loss\":3.0}\nnot json\n").unwrap();
        let e = read_curves(&p).unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn pages_carry_every_block_escaped() {
        let blocks = vec![
            Block::Heading("Curves".into()),
            Block::Image {
                file: "curves.png".into(),
                caption: "loss & lr".into(),
            },
            Block::Table {
                header: vec!["a".into(), "b".into()],
                rows: vec![vec!["1".into(), "<2>".into()]],
            },
            Block::Code("x = 1".into()),
        ];
        let html = to_html("run", &blocks);
        assert!(html.contains("<img src=\"curves.png\" alt=\"loss &amp; lr\">"));
        assert!(html.contains("<td>&lt;2&gt;</td>"));
        assert!(html.contains("dataset.imagesLoaded"));
        let md = to_markdown("run", &blocks);
        assert!(md.contains("![loss & lr](curves.png)") && md.contains("| 1 | <2> |"));
    }
}
