//! The stores a snapshot test runs against: a file store, and a prefix on Garage
//! (S3) when `BOSUN_GARAGE_ENV` names a running one (tests/run.sh starts it).

use std::fs;
use std::path::PathBuf;

use super::Scratch;

/// Where snapshots go in one test.
pub struct StoreUnderTest {
    pub url: String,
    pub env: Vec<(String, String)>,
    /// The directory of a file store (to inspect and damage objects).
    pub dir: Option<PathBuf>,
}

impl StoreUnderTest {
    pub fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn garage_env() -> Option<Vec<(String, String)>> {
    let path = std::env::var("BOSUN_GARAGE_ENV").ok()?;
    let text = fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect(),
    )
}

/// A file store in `s`, and a Garage prefix unique to this test when Garage runs.
pub fn stores(s: &Scratch, name: &str) -> Vec<StoreUnderTest> {
    let dir = s.path("store");
    fs::create_dir_all(&dir).unwrap();
    let mut out = vec![StoreUnderTest {
        url: format!("file://{}", dir.display()),
        env: vec![],
        dir: Some(dir),
    }];
    match garage_env() {
        Some(env) => {
            let bucket = env
                .iter()
                .find(|(k, _)| k == "BOSUN_TEST_BUCKET")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "bosun-test".into());
            let unique = s
                .dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.push(StoreUnderTest {
                url: format!("s3://{bucket}/{name}-{unique}"),
                env,
                dir: None,
            });
        }
        None => eprintln!(
            "skipped the S3 half of {name}: no Garage (set BOSUN_GARAGE_ENV; tests/run.sh does)"
        ),
    }
    out
}
