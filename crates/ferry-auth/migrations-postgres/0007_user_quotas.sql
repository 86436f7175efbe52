-- Per-user quotas and bandwidth limits, and the usage the quota is checked against.
--   quota_bytes, quota_files: most bytes / files the user may store (NULL: the default setting
--     applies; 0: unlimited).
--   upload_kib, download_kib: bandwidth in KiB/s shared by all the user's sessions (NULL: the
--     default setting applies; 0: unlimited).
--   used_bytes, used_files: what the user stores, updated on every committed upload and delete
--     (recount from storage with `ferry user quota NAME --recount`).
ALTER TABLE users ADD COLUMN quota_bytes BIGINT;
ALTER TABLE users ADD COLUMN quota_files BIGINT;
ALTER TABLE users ADD COLUMN upload_kib BIGINT;
ALTER TABLE users ADD COLUMN download_kib BIGINT;
ALTER TABLE users ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN used_files BIGINT NOT NULL DEFAULT 0;
