//! Fault injection: make chosen requests fail, get throttled or hang.

use std::sync::Mutex;
use std::time::Duration;

/// What an injected fault does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status code and a matching `Status` body
    /// (500 InternalError, 503 ServiceUnavailable, 504 Timeout, …).
    Status(u16),
    /// 429 TooManyRequests with `Retry-After` (seconds), as API Priority
    /// and Fairness does.
    TooManyRequests { retry_after_secs: u64 },
    /// Wait this long, then serve the request normally: a slow server.
    Hang(Duration),
    /// Close the connection without answering.
    Reset,
}

/// One injected fault: an action for the next `times` matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub action: FaultAction,
    pub times: usize,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection. `None`: any.
    pub verb: Option<String>,
    /// Request path prefix, e.g. `/api/v1/namespaces/shop/pods`. `None`: any.
    pub path_prefix: Option<String>,
}

impl Fault {
    /// A fault for the next request, whatever it is.
    pub fn new(action: FaultAction) -> Self {
        Self {
            action,
            times: 1,
            verb: None,
            path_prefix: None,
        }
    }

    /// Answer with `code` (e.g. 500).
    pub fn status(code: u16) -> Self {
        Self::new(FaultAction::Status(code))
    }

    /// Answer 429 with `Retry-After: secs`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(FaultAction::TooManyRequests { retry_after_secs })
    }

    /// Delay by `d`, then serve.
    pub fn hang(d: Duration) -> Self {
        Self::new(FaultAction::Hang(d))
    }

    /// Drop the connection.
    pub fn reset() -> Self {
        Self::new(FaultAction::Reset)
    }

    /// For the next `n` matching requests instead of one.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    /// Only requests with this Kubernetes verb.
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_string());
        self
    }

    /// Only requests whose path starts with `prefix`.
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    fn matches(&self, verb: &str, path: &str) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// The armed faults, consumed in the order they were injected.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().push(fault);
        }
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many injected failures are still to fire.
    pub fn pending(&self) -> usize {
        self.lock().iter().map(|f| f.times).sum()
    }

    /// The action for this request, if a fault matches (and is used up).
    pub fn take(&self, verb: &str, path: &str) -> Option<FaultAction> {
        let mut armed = self.lock();
        let i = armed.iter().position(|f| f.matches(verb, path))?;
        let action = armed[i].action.clone();
        armed[i].times -= 1;
        if armed[i].times == 0 {
            armed.remove(i);
        }
        Some(action)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_for_matching_requests_only_and_run_out() {
        let f = Faults::default();
        f.inject(Fault::status(500).times(2).verb("patch"));
        f.inject(Fault::too_many_requests(1).path_prefix("/api/v1/pods"));
        assert_eq!(f.take("get", "/api/v1/namespaces/a/pods/x"), None);
        assert_eq!(f.take("patch", "/x"), Some(FaultAction::Status(500)));
        assert_eq!(
            f.take("list", "/api/v1/pods"),
            Some(FaultAction::TooManyRequests {
                retry_after_secs: 1
            })
        );
        assert_eq!(f.pending(), 1);
        assert_eq!(f.take("patch", "/x"), Some(FaultAction::Status(500)));
        assert_eq!(f.take("patch", "/x"), None);
    }
}
