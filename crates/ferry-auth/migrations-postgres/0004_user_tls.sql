-- Per-user FTPS overrides (NULL: the listener's setting applies).
--   require_tls: 1 = this user may log in only over TLS.
--   protected_data: 1/0 = data connections must / need not be TLS under a TLS control connection.
--   danger_allow_unresumed_data_tls: 1 = accept TLS data connections that do not resume the control
--     connection's session (for clients that cannot resume; weakens passive-port-theft protection).
ALTER TABLE users ADD COLUMN require_tls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN protected_data BIGINT;
ALTER TABLE users ADD COLUMN danger_allow_unresumed_data_tls BIGINT;
