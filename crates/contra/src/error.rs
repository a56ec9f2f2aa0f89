//! contra's error type: every error says what was being read or checked and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A file could not be opened, read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but its content is not what its format requires.
    Format { path: PathBuf, message: String },
    /// A recipe or argument is invalid: `key` names the field.
    Config { key: String, message: String },
    /// A data set could not be found in any of the places searched.
    NotFound {
        what: String,
        searched: Vec<PathBuf>,
    },
    /// Anything else, with a message that says what went wrong.
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }
    /// The same error with a config key's prefix `from` replaced by `to` (a table checked
    /// under another name: CLIP's `[text]` is a `bert` encoder's table).
    pub fn rekey(self, from: &str, to: &str) -> Self {
        match self {
            Error::Config { key, message } => Error::Config {
                key: key
                    .strip_prefix(from)
                    .map_or(key.clone(), |rest| format!("{to}{rest}")),
                message,
            },
            other => other,
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Format { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Config { key, message } => write!(f, "`{key}`: {message}"),
            Error::NotFound { what, searched } => {
                write!(f, "{what} not found; searched:")?;
                for p in searched {
                    write!(f, "\n  {}", p.display())?;
                }
                Ok(())
            }
            Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
