//! A TCP proxy that drops the first connections it accepts (closes them
//! without a word) and forwards the rest: a service that is briefly down, or
//! a network that drops connections, in front of a real server. It can also
//! be taken down and brought back at will ([`FlakyProxy::set_down`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct FlakyProxy {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    dropped: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    /// Bumped to sever every open connection.
    cuts: Arc<watch::Sender<u64>>,
}

impl FlakyProxy {
    /// Forwards to `target` (`host:port`) after dropping `drop_first` connections.
    pub async fn start(target: String, drop_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let dropped = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0);
        let cuts = Arc::new(cuts);
        let proxy = Self {
            url,
            dropped,
            down,
            cuts,
        };
        let state = proxy.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if state.down.load(Ordering::SeqCst)
                    || state.dropped.load(Ordering::SeqCst) < drop_first
                {
                    state.dropped.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut = state.cuts.subscribe();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                        }
                    }
                });
            }
        });
        proxy
    }

    /// How many connections were dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Down: open connections are severed and new ones dropped. Up: forwards again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cuts.send_modify(|n| *n += 1);
        }
    }
}
