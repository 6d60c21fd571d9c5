//! Test support: a real Strata server on a free loopback port, served on a background thread.

use std::error::Error;
use std::sync::Arc;

use strata_server::ServerConfig;
use strata_store::{MemoryStore, Store};

/// The root key every test server is started with.
pub const ROOT_KEY: &str = "scenario-test-root-key";

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A server on 127.0.0.1, serving on a background thread until dropped.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// A server on the memory store.
    pub fn start() -> Result<Server> {
        Self::start_on(Arc::new(MemoryStore::new()?))
    }

    /// A server on `store`.
    pub fn start_on(store: Arc<dyn Store>) -> Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let config = ServerConfig {
            store,
            root_key: Some(ROOT_KEY.to_owned()),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                strata_server::serve(config, listener, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        Ok(Server {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Shuts the server down and waits for it to finish.
    pub fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(served)) => Ok(served?),
            Some(Err(_)) => Err("the server thread panicked".into()),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
