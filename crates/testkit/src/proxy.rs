//! A TCP proxy that drops the first connections it accepts (closes them
//! without a word) and forwards the rest: a service that is briefly down, or
//! a network that drops connections, in front of a real server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct FlakyProxy {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    dropped: Arc<AtomicUsize>,
}

impl FlakyProxy {
    /// Forwards to `target` (`host:port`) after dropping `drop_first` connections.
    pub async fn start(target: String, drop_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let dropped = Arc::new(AtomicUsize::new(0));
        let counter = dropped.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if counter.load(Ordering::SeqCst) < drop_first {
                    counter.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { url, dropped }
    }

    /// How many connections were dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}
