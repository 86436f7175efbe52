//! Opening the storage back-end `ferry serve` serves files from: the local files root, or an S3
//! bucket (checked at start, so a wrong endpoint, bucket or key stops the server with a clear error).

use std::sync::Arc;

use anyhow::{anyhow, Result};
use ferry_vfs::s3::S3Fs;
use ferry_vfs::{LocalFs, Storage};
use tracing::info;

use crate::admin::StorageProbe;
use crate::config::storage::StorageSettings;
use crate::config::Settings;
use crate::state::cause;

/// The storage, and how `/readyz` checks it.
pub async fn open(settings: &Settings) -> Result<(Arc<dyn Storage>, StorageProbe)> {
    match &settings.storage {
        StorageSettings::Local => {
            let local = LocalFs::open(&settings.files_root)
                .map_err(|e| {
                    anyhow!(
                        "cannot open the files root {}: {} (set `files_root` / `--files-root`)",
                        settings.files_root.display(),
                        cause(&e)
                    )
                })?
                .keep_checksums(settings.keep_checksums);
            crate::sweep::start(local.clone());
            Ok((Arc::new(local), StorageProbe::Local(settings.files_root.clone())))
        }
        StorageSettings::S3(config) => {
            let fs = S3Fs::connect(config).await.map_err(|e| {
                anyhow!(
                    "{e} (check `storage.endpoint`, `storage.bucket`, `storage.region`, `storage.path_style` \
                     and the access key)"
                )
            })?;
            info!(
                bucket = %config.bucket,
                endpoint = config.endpoint.as_deref().unwrap_or("AWS"),
                prefix = %config.prefix,
                "S3 storage ready"
            );
            Ok((Arc::new(fs.clone()), StorageProbe::S3(fs)))
        }
    }
}
