//! The RabbitMQ side of dynamo-consumer: take deliveries from our queue, hand
//! each to the pipeline, and acknowledge it only once its outcome is committed.
//!
//! - a malformed message is re-published to the dead-letter exchange with the
//!   reason in a header, then acknowledged: parked, never lost, never retried;
//! - so is a poison message: one the database refuses outright (its values
//!   break a constraint, [`dynamo_store::StoreError::is_refused_data`]), or
//!   one delivered `DELIVERY_LIMIT` times without being settled (it failed
//!   every time, or took its consumer down with it);
//! - a request whose progress could not be recorded is returned to the queue
//!   (nack with requeue) after a pause, and resumes from its last commit;
//! - at most `prefetch` requests are in flight, because the broker sends no
//!   more unacknowledged deliveries than that (basic.qos);
//! - while the fleet holds a service, nothing is taken: the subscription is
//!   cancelled and the requests stay ready in the queue ([`crate::pause`]).

use crate::pause::HoldWatch;
use dynamo_broker::{BrokerError, Connected, Delivery, Subscription, Topology, headers};
use dynamo_pipeline::{Job, Outcome, Pipeline, PipelineError};
use dynamo_runtime::Shutdown;
use dynamo_wire::GenerationRequest;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How far back a redelivered message without a message_id is matched. A
/// redelivery follows a crash or a lost connection within seconds to minutes;
/// the window must not reach an identical request the viewer made on purpose
/// long before.
const FINGERPRINT_WINDOW: Duration = Duration::from_secs(15 * 60);

pub struct Consumer {
    pub pipeline: Arc<Pipeline>,
    pub topology: Topology,
    pub prefetch: u16,
    /// `DELIVERY_LIMIT`: deliveries a message may have without being settled.
    pub delivery_limit: u32,
    pub shutdown_grace: Duration,
    /// While the fleet holds, the subscription is paused (see [`crate::pause`]).
    pub holds: HoldWatch,
}

impl Consumer {
    /// Consumes on `connection` until shutdown (`Ok`) or until the
    /// connection fails (`Err`), pausing the subscription while the fleet
    /// holds. Requests taken go into `in_flight`, which outlives the
    /// connection: after a loss they carry on (their leases keep every other
    /// copy away, and their messages, unacknowledgeable now, are redelivered
    /// and acked as owned elsewhere or ended) while the caller consumes again
    /// on the next connection. On shutdown, in-flight requests get the grace
    /// period to finish; the rest stay unacknowledged for the broker to
    /// redeliver.
    pub async fn run(
        self: &Arc<Self>,
        connection: &Connected,
        in_flight: &TaskTracker,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let mut deliveries = connection
            .subscribe_paused(&self.topology.requests_queue, self.prefetch)
            .await?;
        let mut holds = self.holds.clone();
        let this = Arc::clone(self);
        // This connection's share of `in_flight`: its channel must stay open
        // until they are settled.
        let taken_here = TaskTracker::new();
        let result = loop {
            if let Err(error) = self.follow_holds(&mut deliveries).await {
                break Err(error);
            }
            tokio::select! {
                biased;
                _ = shutdown.requested() => break Ok(()),
                () = holds.changed() => {}
                next = deliveries.next() => match next {
                    Ok(delivery) => {
                        let this = Arc::clone(&this);
                        let handled = async move { this.handle(delivery).await };
                        in_flight.spawn(taken_here.track_future(handled));
                    }
                    Err(error) => break Err(error),
                },
            }
        };
        deliveries.cancel().await;
        if result.is_ok() {
            self.finish(in_flight).await;
            // Hands back what did not finish within the grace period.
            deliveries.close().await;
        } else {
            // Consuming again must not wait for this connection's work; if
            // the connection still lives (the broker ended the subscription),
            // its channel stays open until that work is settled.
            taken_here.close();
            tokio::spawn(async move {
                taken_here.wait().await;
                deliveries.close().await;
            });
        }
        result
    }

    /// Shutdown: gives the requests in flight, taken on any connection, the
    /// grace period to finish.
    pub async fn finish(&self, in_flight: &TaskTracker) {
        in_flight.close();
        if !in_flight.is_empty() {
            tracing::info!(in_flight = in_flight.len(), grace = ?self.shutdown_grace, "waiting for requests in flight");
        }
        if tokio::time::timeout(self.shutdown_grace, in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = in_flight.len(),
                "grace period over; unfinished requests stay unacknowledged and will be redelivered"
            );
        }
    }

    /// Pauses the subscription while the fleet holds, resumes it once the
    /// hold is over. Requests in flight carry on either way: during a hold
    /// they wait in the database and their messages are acked, so none is
    /// left unacknowledged for RabbitMQ's `consumer_timeout`.
    async fn follow_holds(&self, deliveries: &mut Subscription) -> Result<(), BrokerError> {
        let queue = &self.topology.requests_queue;
        match (self.holds.paused(), deliveries.is_paused()) {
            (Some(paused), false) => {
                deliveries.pause().await?;
                tracing::info!(%queue, service = %paused.service, "stopped consuming while the fleet holds");
            }
            (None, true) => {
                deliveries.resume().await?;
                tracing::info!(%queue, prefetch = self.prefetch, "consuming generation requests");
            }
            _ => {}
        }
        Ok(())
    }

    async fn handle(&self, delivery: Delivery) {
        let request = match GenerationRequest::from_slice(&delivery.body) {
            Ok(request) => request,
            Err(error) => {
                let reason = error.to_string();
                tracing::warn!(%reason, bytes = delivery.body.len(), "malformed generation request dead-lettered");
                self.dead_letter(&delivery, &reason).await;
                return;
            }
        };
        let fingerprint = Sha256::digest(&delivery.body).to_vec();
        let seen = match self.deliveries(&delivery, &fingerprint).await {
            Ok(seen) => seen,
            Err(error) => {
                tracing::error!(%error, "could not count a redelivered message's deliveries; requeueing it");
                return requeue_later(&delivery, self.pipeline.infra_pause()).await;
            }
        };
        if seen.count > self.delivery_limit {
            let reason = format!(
                "delivered {} times without finishing (DELIVERY_LIMIT is {}): it fails every \
                 time or stops its consumer; see the consumer's log for its errors",
                seen.count, self.delivery_limit
            );
            tracing::error!(message_id = ?delivery.message_id, %reason, "poison message dead-lettered");
            return self
                .settle(&delivery, &seen, Settle::DeadLetter(&reason))
                .await;
        }
        let (id, fingerprint) = match self.request_id(&delivery, fingerprint).await {
            Ok(identity) => identity,
            Err(error) => {
                tracing::error!(%error, "could not look up a redelivered message; requeueing it");
                return requeue_later(&delivery, self.pipeline.infra_pause()).await;
            }
        };
        // A try-out is an admin's: never charged, never held to the rules.
        let trial = delivery.header(headers::TRIAL) == Some("true");
        let job = Job {
            id,
            fingerprint,
            request,
            free_of_charge: trial || delivery.header(headers::FREE_OF_CHARGE) == Some("true"),
            bypass_rules: trial || delivery.header(headers::BYPASS_RULES) == Some("true"),
            trial,
            retry_of: delivery
                .header(headers::RETRY_OF)
                .and_then(|v| v.parse().ok()),
            trace_context: delivery.trace_context(),
        };
        match self.pipeline.handle(&job).await {
            Ok(Outcome::Ended {
                state,
                reason,
                timings,
            }) => {
                tracing::info!(
                    request_id = %job.id,
                    %state,
                    reason = reason.as_deref().unwrap_or(""),
                    total = ?timings.total(),
                    steps = %timings,
                    "request finished"
                );
                self.settle(&delivery, &seen, Settle::Ack).await;
            }
            Ok(Outcome::Waiting {
                state, until, why, ..
            }) => {
                tracing::info!(
                    request_id = %job.id,
                    %state,
                    retry_at = %until,
                    ?why,
                    "request waits in the database; its message is done"
                );
                self.settle(&delivery, &seen, Settle::Ack).await;
            }
            // The owner drives the request to its end; this copy adds nothing.
            Ok(Outcome::OwnedElsewhere { .. }) => {
                self.settle(&delivery, &seen, Settle::Ack).await;
            }
            Ok(Outcome::Refused { reason }) => {
                tracing::warn!(%reason, "generation request for no enabled style dead-lettered");
                self.settle(&delivery, &seen, Settle::DeadLetter(&reason))
                    .await;
            }
            // The same values will be refused every time: park the message.
            Err(PipelineError::Store(error)) if error.is_refused_data() => {
                let reason = format!("the database refused the request: {error}");
                tracing::error!(request_id = %job.id, %reason, "poison message dead-lettered");
                self.settle(&delivery, &seen, Settle::DeadLetter(&reason))
                    .await;
            }
            Err(error) => {
                self.pipeline.metrics().requeued();
                tracing::error!(request_id = %job.id, %error, deliveries = seen.count, "could not record progress; the request will be retried from its last step");
                requeue_later(&delivery, self.pipeline.infra_pause()).await;
            }
        }
    }

    /// How many times this message has been delivered, this time included:
    /// RabbitMQ's count on a quorum queue; on a classic queue one for a
    /// first delivery, else the count kept in PostgreSQL (a redelivery is
    /// rare, so only redeliveries cost a statement).
    async fn deliveries(
        &self,
        delivery: &Delivery,
        fingerprint: &[u8],
    ) -> Result<Deliveries, dynamo_store::StoreError> {
        if let Some(before) = delivery.delivery_count {
            let count = u32::try_from(before.saturating_add(1)).unwrap_or(u32::MAX);
            return Ok(Deliveries { count, key: None });
        }
        if !delivery.redelivered {
            return Ok(Deliveries {
                count: 1,
                key: None,
            });
        }
        let key = match &delivery.message_id {
            Some(id) => id.as_bytes().to_vec(),
            None => fingerprint.to_vec(),
        };
        let count = self.pipeline.store().count_redelivery(&key).await?;
        Ok(Deliveries {
            count,
            key: Some(key),
        })
    }

    /// Acknowledges or parks the message, then forgets its delivery count.
    async fn settle(&self, delivery: &Delivery, seen: &Deliveries, how: Settle<'_>) {
        let settled = match how {
            Settle::Ack => ack(delivery).await,
            Settle::DeadLetter(reason) => self.dead_letter(delivery, reason).await,
        };
        if let (true, Some(key)) = (settled, &seen.key)
            && let Err(error) = self.pipeline.store().forget_deliveries(key).await
        {
            // Harmless: a later message with the same id starts from this count.
            tracing::warn!(%error, "could not forget a settled message's delivery count");
        }
    }

    /// Parks a message with the reason, then acknowledges it; true once
    /// parked. If parking fails the message is requeued rather than dropped.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> bool {
        let publisher = self.pipeline.publisher().clone();
        match delivery
            .dead_letter(&publisher, &self.topology.dead_letter_exchange, reason)
            .await
        {
            Ok(()) => {
                self.pipeline.metrics().dead_lettered();
                true
            }
            // Parked, but the ack was lost with the connection: the copy that
            // comes back is parked again. Better twice than never.
            Err(dynamo_broker::DeadLetterError::Ack(error)) => {
                self.pipeline.metrics().dead_lettered();
                tracing::warn!(%error, "could not acknowledge a parked message; it will be redelivered");
                true
            }
            Err(error) => {
                tracing::error!(%error, "could not park the message; requeueing it");
                requeue_later(delivery, self.pipeline.infra_pause()).await;
                false
            }
        }
    }
}

/// A message's deliveries so far, and the key its count is kept under in
/// PostgreSQL when it is kept there.
struct Deliveries {
    count: u32,
    key: Option<Vec<u8>>,
}

/// How a message is settled.
enum Settle<'a> {
    Ack,
    DeadLetter(&'a str),
}

impl Consumer {
    /// Which request a message is. The publisher's `message_id` when it is a
    /// UUID. Otherwise the message is fingerprinted (SHA-256 of its body): a
    /// first delivery is a new request; a *redelivered* one resumes the
    /// request with the same fingerprint recorded within the last
    /// `FINGERPRINT_WINDOW` (one still in progress first), or is new if none.
    async fn request_id(
        &self,
        delivery: &Delivery,
        fingerprint: Vec<u8>,
    ) -> Result<(Uuid, Option<Vec<u8>>), dynamo_store::StoreError> {
        if let Some(id) = delivery.message_uuid() {
            return Ok((id, None));
        }
        if delivery.redelivered
            && let Some(id) = self
                .pipeline
                .store()
                .find_by_fingerprint(&fingerprint, FINGERPRINT_WINDOW)
                .await?
        {
            return Ok((id, Some(fingerprint)));
        }
        Ok((Uuid::new_v4(), Some(fingerprint)))
    }
}

/// Acknowledges the message; true when the broker took the ack.
async fn ack(delivery: &Delivery) -> bool {
    match delivery.ack().await {
        Ok(()) => true,
        Err(error) => {
            // The broker will redeliver; the pipeline resumes from the committed state.
            tracing::warn!(%error, "could not acknowledge a message; it will be redelivered");
            false
        }
    }
}

/// Hands a message back to the broker after `pause` (`INFRA_RETRY_PAUSE`), so
/// a database or broker outage does not become a hot redelivery loop.
async fn requeue_later(delivery: &Delivery, pause: Duration) {
    tokio::time::sleep(pause).await;
    if let Err(error) = delivery.requeue().await {
        // Lost with the connection: the broker hands it back all the same.
        tracing::debug!(%error, "could not requeue a message; it will be redelivered");
    }
}
