//! `contra info`: the build's backends and devices, and which data sets are found.

use super::print;
use contra::Result;
use contra::data::locate;

#[derive(clap::Args)]
pub struct Args {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Info {
    version: &'static str,
    backends: Vec<String>,
    devices: Vec<String>,
    /// Each data set with the folder it was found in (null: not found).
    data: Vec<(String, Option<String>)>,
}

pub fn run(a: Args) -> Result<()> {
    let mut data = vec![("digits".to_string(), Some("bundled".to_string()))];
    for name in ["fashion-mnist", "mnist", "cifar10"] {
        let found = locate::candidates(name, None)
            .into_iter()
            .find(|p| p.is_dir());
        data.push((name.into(), found.map(|p| p.display().to_string())));
    }
    let wordnet = ["/usr/share/wordnet".into()]
        .into_iter()
        .chain(locate::data_root().map(|r| r.join("wordnet")))
        .find(|d: &std::path::PathBuf| d.join("data.noun").is_file());
    data.push(("wordnet".into(), wordnet.map(|p| p.display().to_string())));
    let minilm = locate::data_root()
        .map(|r| r.join("models/all-MiniLM-L6-v2"))
        .filter(|d| d.join("model.safetensors").is_file());
    data.push((
        "all-MiniLM-L6-v2".into(),
        minilm.map(|p| p.display().to_string()),
    ));
    let emoji = locate::candidates("emoji-datasource-twitter", None)
        .into_iter()
        .find(|d| d.join("emoji.json").is_file());
    data.push((
        "emoji-datasource-twitter".into(),
        emoji.map(|p| p.display().to_string()),
    ));
    let templates = locate::candidates("clip-benchmark", None)
        .into_iter()
        .map(|d| d.join(contra::data::captions::TEMPLATES_FILE))
        .find(|p| p.is_file());
    data.push((
        "clip-benchmark templates".into(),
        templates.map(|p| p.display().to_string()),
    ));
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        backends: contra::device::features()
            .into_iter()
            .map(str::to_string)
            .collect(),
        devices: contra::device::available()
            .into_iter()
            .map(str::to_string)
            .collect(),
        data,
    };
    print(a.json, &info, || {
        let mut s = format!("contra {}\n", info.version);
        s += &format!("backends compiled in: {}\n", info.backends.join(", "));
        s += &format!("devices: {}\n", info.devices.join(", "));
        s += "data sets:\n";
        for (name, found) in &info.data {
            s += &match (name.as_str(), found) {
                ("digits", _) => "  digits: bundled (1,797 images, 8x8)\n".to_string(),
                (_, Some(p)) => format!("  {name}: {p}\n"),
                ("wordnet", None) => "  wordnet: not found (apt-get install wordnet-base)\n".into(),
                ("emoji-datasource-twitter", None) => "  emoji-datasource-twitter: not found (searched $CONTRA_DATA; .ci/run unpacks `npm pack emoji-datasource-twitter@16.0.0` there)\n".into(),
                ("clip-benchmark templates", None) => "  clip-benchmark templates: not found (searched $CONTRA_DATA/clip-benchmark; .ci/run takes them from the clip-benchmark 1.6.2 wheel)\n".into(),
                ("all-MiniLM-L6-v2", None) => {
                    "  all-MiniLM-L6-v2: not found (searched $CONTRA_DATA/models; .ci/run fetches it)\n".into()
                }
                (_, None) => format!(
                    "  {name}: not found (searched $CONTRA_DATA/{name}{})\n",
                    if name == "fashion-mnist" {
                        " and /usr/share/datasets/fashion-mnist"
                    } else {
                        ""
                    }
                ),
            };
        }
        s
    });
    Ok(())
}
