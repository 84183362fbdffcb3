//! Everything dynamo-server reads from the environment.

use dynamo_runtime::{BrokerSettings, DatabaseSettings, Env, SettingError};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    /// `BIND_ADDR`, default `0.0.0.0`.
    pub bind_addr: IpAddr,
    /// `LISTEN_PORT`, default 8080.
    pub listen_port: u16,
    /// `STORAGE_DIR` when `STORAGE_BACKEND=filesystem`: served under `/images`.
    pub images_dir: Option<PathBuf>,
}

impl ServerConfig {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let images_dir = match env.string("STORAGE_BACKEND", "s3").as_str() {
            "filesystem" => Some(PathBuf::from(env.string("STORAGE_DIR", "./data/images"))),
            _ => None,
        };
        Ok(Self {
            database: DatabaseSettings::from_env(env)?,
            broker: BrokerSettings::from_env(env)?,
            bind_addr: env.parse("BIND_ADDR", IpAddr::from([0, 0, 0, 0]))?,
            listen_port: env.parse("LISTEN_PORT", 8080)?,
            images_dir,
        })
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.listen_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bind_addr_names_the_variable() {
        let error =
            ServerConfig::from_env(&Env::from_pairs([("BIND_ADDR", "everywhere")])).unwrap_err();
        assert_eq!(error.name, "BIND_ADDR");
    }

    #[test]
    fn images_are_served_only_for_filesystem_storage() {
        assert!(
            ServerConfig::from_env(&Env::default())
                .unwrap()
                .images_dir
                .is_none()
        );
        let env = Env::from_pairs([("STORAGE_BACKEND", "filesystem"), ("STORAGE_DIR", "/tmp/x")]);
        assert_eq!(
            ServerConfig::from_env(&env).unwrap().images_dir,
            Some(PathBuf::from("/tmp/x"))
        );
    }
}
