//! The `[storage]` table: the local disk under `files_root`, or an S3-compatible bucket.

use anyhow::{anyhow, Context, Result};
use ferry_vfs::s3::S3Config;

use super::layer::{Value, Values};

/// Where user files live.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// `files_root` on the local disk.
    Local,
    /// An S3 bucket (its `Debug` never shows the secret key).
    S3(S3Config),
}

/// The storage settings from the merged values; S3 needs a bucket, and the secret key comes from the
/// setting (flag, variable, file key) or from `storage.secret_access_key_file`, not both.
pub(super) fn build(v: &Values, origin: &str) -> Result<StorageSettings> {
    if v.text("storage.backend")? != "s3" {
        return Ok(StorageSettings::Local);
    }
    let text = |key: &str| {
        v.opt(key, |x| match x {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        })
        .map(|s| s.filter(|s| !s.is_empty()))
    };
    let bucket = text("storage.bucket")?.ok_or_else(|| {
        anyhow!("{origin}: `storage.backend` is \"s3\" but `storage.bucket` is not set: name the bucket (--storage-bucket)")
    })?;
    let secret = match (
        text("storage.secret_access_key")?,
        v.path("storage.secret_access_key_file")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(anyhow!(
                "{origin}: give `storage.secret_access_key` or `storage.secret_access_key_file`, not both"
            ))
        }
        (Some(s), None) => Some(s),
        (None, Some(file)) => {
            let raw = std::fs::read_to_string(&file).with_context(|| {
                format!("cannot read `storage.secret_access_key_file` {}", file.display())
            })?;
            Some(raw.trim().to_owned())
        }
        (None, None) => None,
    };
    let access_key_id = text("storage.access_key_id")?;
    if access_key_id.is_some() != secret.is_some() {
        return Err(anyhow!(
            "{origin}: give `storage.access_key_id` and a secret access key together (or neither, to use \
             the AWS environment's credentials)"
        ));
    }
    Ok(StorageSettings::S3(S3Config {
        endpoint: text("storage.endpoint")?,
        bucket,
        region: v.text("storage.region")?,
        prefix: v.text("storage.prefix")?,
        path_style: v.bool("storage.path_style")?,
        access_key_id,
        secret_access_key: secret,
        danger_allow_dir_rename: v.bool("storage.danger_allow_dir_rename")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layer::{merge, Layer};

    fn load_text(text: &str) -> Result<StorageSettings> {
        let file = Layer::from_toml(text, "ferry.toml")?;
        build(&merge(&[&file])?, "ferry.toml")
    }

    fn s3(text: &str) -> S3Config {
        match load_text(text).expect("load") {
            StorageSettings::S3(c) => c,
            StorageSettings::Local => panic!("local storage from {text:?}"),
        }
    }

    #[test]
    fn storage_is_local_by_default() {
        assert!(matches!(load_text("").expect("load"), StorageSettings::Local));
    }

    #[test]
    fn every_s3_key_is_read() {
        let c = s3(
            "[storage]\nbackend = \"s3\"\nendpoint = \"http://127.0.0.1:9000/\"\nbucket = \"b\"\n\
                    region = \"eu-west-1\"\nprefix = \"ftp/\"\npath_style = true\naccess_key_id = \"id\"\n\
                    secret_access_key = \"sekrit\"\ndanger_allow_dir_rename = true\n",
        );
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            (c.bucket.as_str(), c.region.as_str(), c.prefix.as_str()),
            ("b", "eu-west-1", "ftp/")
        );
        assert!(c.path_style && c.danger_allow_dir_rename);
        assert_eq!(c.access_key_id.as_deref(), Some("id"));
        assert_eq!(c.secret_access_key.as_deref(), Some("sekrit"));
        // The settings' Debug (what a log line or a panic would show) hides the secret.
        assert!(!format!("{:?}", StorageSettings::S3(c)).contains("sekrit"));
    }

    #[test]
    fn the_secret_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "  from-file\n").expect("write");
        let text = format!(
            "[storage]\nbackend = \"s3\"\nbucket = \"b\"\naccess_key_id = \"id\"\nsecret_access_key_file = {:?}\n",
            file.display().to_string()
        );
        assert_eq!(s3(&text).secret_access_key.as_deref(), Some("from-file"));
    }

    #[test]
    fn incomplete_or_conflicting_s3_settings_name_the_keys() {
        for (text, key) in [
            ("[storage]\nbackend = \"s3\"", "storage.bucket"),
            ("[storage]\nbackend = \"s3\"\nbucket = \"b\"\naccess_key_id = \"id\"", "storage.access_key_id"),
            (
                "[storage]\nbackend = \"s3\"\nbucket = \"b\"\naccess_key_id = \"i\"\nsecret_access_key = \"s\"\n\
                 secret_access_key_file = \"/f\"",
                "storage.secret_access_key_file",
            ),
            ("[storage]\nbackend = \"disk\"", "storage.backend"),
            ("[storage]\nendpoint = \"minio:9000\"", "storage.endpoint"),
        ] {
            let err = format!("{:#}", load_text(text).expect_err(text));
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
