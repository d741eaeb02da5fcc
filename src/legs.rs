//! Reaching the person on the call, not a leg: which leg of a call a Voice SDK client is on.
//!
//! A call message is seen only by a Voice SDK client, and only on its own leg: twilio-voice.js
//! (`lib/twilio/call.ts`, `_onMessageReceived`) drops a message whose call SID is not its
//! call's, while Twilio's REST API answers 201 for it. A call has a parent leg and the child
//! legs it dialled; Twilio's Call resource says who is on each (twilio-oai
//! `spec/json/twilio_api_v2010.json`, `api.v2010.account.call`: `from` and `to` are "Client
//! identifiers formatted `client:name`" for a client, `direction` is `inbound`, `outbound-api`
//! or `outbound-dial`, `parent_call_sid` is "the call that created this leg"). Read from those
//! fields:
//!
//! | the client | its leg | where its identity is |
//! | --- | --- | --- |
//! | placed the call | the `inbound` parent | `from` |
//! | accepted it (`<Dial><Client>`) | an `outbound-dial` child | `to` |
//! | was called by the REST API, or added to a conference | an `outbound-api` leg | `to` |
//!
//! A leg of another direction (none is documented) is not taken for a client's. Nor is a leg
//! that has ended (`completed`, `busy`, `failed`, `no-answer`, `canceled`) or not started
//! (`queued`): Twilio accepts a message only on an `in-progress` or `ringing` call (Twilio's
//! *Voice SDK Call Message Events* page); a status Twilio may add is given the benefit of the
//! doubt.
//!
//! # What is cached, and why
//!
//! A resolution (the parent, its children, the clients on them) is cached per call once one
//! of its client legs is `in-progress`: the call is connected, and its legs no longer change
//! while it lasts. It is not cached while the client's leg rings or when no leg has a client
//! yet: the parent may still dial the client's leg (a child does not exist before its `<Dial>`).
//! A send to a cached leg that Twilio refuses as not active (error 21220: the leg ended, and
//! the call may have dialled another) drops the entry and resolves again once. At most
//! `CLIENT_LEG_CACHE_CAPACITY` calls are kept, the oldest forgotten first.

use std::future::Future;
use std::sync::Arc;

use crate::client::Client;
use crate::error::{Error, LegError, RequestInfo};
use crate::generated::{self, types};
use crate::model::{CallLeg, ClientLeg};
use crate::orchestrator::{self, Generated, Operation, Options};
use crate::sid::{AccountSid, CallSid, ConferenceSid, IntoSid};

pub(crate) mod cache;
use cache::Resolved;

/// The prefix of a Voice SDK client's identifier in a Call resource's `from` or `to`.
const CLIENT_PREFIX: &str = "client:";

/// A page of Twilio's list answers, as large as Twilio allows: fewer round trips.
const PAGE_SIZE: u64 = 1000;

/// The Voice SDK client on `leg`, by the rule of this module's table, if the leg can take a
/// message.
fn client_on(leg: &CallLeg) -> Option<ClientLeg> {
    let inactive = [
        "queued",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    ];
    if leg.status.as_deref().is_some_and(|s| inactive.contains(&s)) {
        return None;
    }
    let endpoint = match leg.direction.as_deref()? {
        "inbound" => leg.from.as_deref(),
        "outbound-api" | "outbound-dial" => leg.to.as_deref(),
        _ => None,
    }?;
    let identity = endpoint.strip_prefix(CLIENT_PREFIX)?;
    (!identity.is_empty()).then(|| ClientLeg {
        call_sid: leg.call_sid,
        identity: identity.to_owned(),
        parent_call_sid: leg.parent_call_sid,
        status: leg.status.clone().unwrap_or_default(),
    })
}

/// Which leg a request goes to.
#[derive(Clone, Debug, Default)]
pub(crate) enum Target {
    /// The leg given (Twilio's own rule: the caller picks the leg).
    #[default]
    Given,
    /// The leg of the call's Voice SDK client, whichever leg was given; named when the call
    /// has clients on both legs.
    Client(Option<String>),
    /// The leg given, which must have a Voice SDK client (a conference participant's leg).
    ThisLeg,
}

/// An operation whose call can be changed to the client's leg before it is sent (`Clone`: a
/// send refused on a stale cached leg is sent again, once, to the fresh one).
pub(crate) trait OnLeg: Operation + Clone {
    /// The leg the request goes to.
    fn call_mut(&mut self) -> &mut CallSid;
    /// Records on the result which client it went to.
    fn reached(output: &mut Self::Output, identity: String);
}

/// Sends `operation` to the leg `target` names: the one request path, after the resolution's
/// own requests (each through the same path). A send to a cached leg that Twilio refuses as
/// not active (21220: not processed) resolves again without the cache and, if the call's
/// client is now on another leg, sends there once.
pub(crate) async fn send_to<O: OnLeg>(
    client: Client,
    options: Options,
    operation: Result<O, Error>,
    target: Target,
) -> Result<O::Output, Error> {
    let mut operation = operation?;
    if matches!(target, Target::Given) {
        return orchestrator::run(client, options, Ok(operation)).await;
    }
    let given = *operation.call_mut();
    let reads = Options {
        idempotency_key: None,
        ..options.clone()
    };
    let (mut leg, cached) = pick(&client, &reads, given, &target, true).await?;
    *operation.call_mut() = leg.call_sid;
    let again = cached.then(|| (operation.clone(), options.clone()));
    let mut result = orchestrator::run(client.clone(), options, Ok(operation)).await;
    if let (Err(e), Some((mut operation, options))) = (&result, again)
        && e.code() == Some(21220)
    {
        client.inner().legs.forget(&given);
        let (fresh, _) = pick(&client, &reads, given, &target, false).await?;
        if fresh.call_sid != leg.call_sid {
            *operation.call_mut() = fresh.call_sid;
            leg = fresh;
            result = orchestrator::run(client.clone(), options, Ok(operation)).await;
        }
    }
    result.map(|mut output| {
        O::reached(&mut output, leg.identity);
        output
    })
}

/// The leg `target` names for `call`, and whether it came from the cache.
async fn pick(
    client: &Client,
    options: &Options,
    call: CallSid,
    target: &Target,
    use_cache: bool,
) -> Result<(ClientLeg, bool), Error> {
    match target {
        // `send_to` sends these itself; a leg is only ever picked for the other two.
        Target::Given => Err(crate::error::InputError::Request(
            "no leg to pick: the request goes to the leg given".into(),
        )
        .into()),
        Target::ThisLeg => {
            let leg = fetch_leg(client, options, call).await?;
            match client_on(&leg) {
                Some(client_leg) => Ok((client_leg, false)),
                None => Err(Error::Leg(Box::new(LegError::NoClient {
                    call,
                    found: vec![leg],
                }))),
            }
        }
        Target::Client(name) => {
            let (resolved, cached) = resolve(client, options, call, use_cache).await?;
            choose(call, &resolved, name.as_deref()).map(|leg| (leg, cached))
        }
    }
}

/// The client leg named `name`, or the only one.
fn choose(call: CallSid, resolved: &Resolved, name: Option<&str>) -> Result<ClientLeg, Error> {
    let clients = &resolved.clients;
    let chosen = match name {
        Some(name) => {
            clients
                .iter()
                .find(|c| c.identity == name)
                .ok_or_else(|| LegError::NoSuchClient {
                    call,
                    identity: name.to_owned(),
                    clients: clients.clone(),
                })
        }
        None => match clients.as_slice() {
            [only] => Ok(only),
            [] => Err(LegError::NoClient {
                call,
                found: resolved.legs.clone(),
            }),
            _ => Err(LegError::SeveralClients {
                call,
                clients: clients.clone(),
            }),
        },
    };
    chosen.cloned().map_err(|e| Error::Leg(Box::new(e)))
}

/// The parent of `call`'s leg, the parent's children, and the clients on them: from the cache
/// when `use_cache` and it has them.
async fn resolve(
    client: &Client,
    options: &Options,
    call: CallSid,
    use_cache: bool,
) -> Result<(Arc<Resolved>, bool), Error> {
    let cache = &client.inner().legs;
    if use_cache && let Some(resolved) = cache.get(&call) {
        return Ok((resolved, true));
    }
    let given = fetch_leg(client, options, call).await?;
    let parent = match given.parent_call_sid {
        Some(parent) => fetch_leg(client, options, parent).await?,
        None => given,
    };
    let children = list_children(client, options, parent.call_sid).await?;
    let legs: Vec<CallLeg> = std::iter::once(parent).chain(children).collect();
    let clients: Vec<ClientLeg> = legs.iter().filter_map(client_on).collect();
    let connected = clients.iter().any(|c| c.status == "in-progress");
    let resolved = Arc::new(Resolved { legs, clients });
    if connected {
        cache.put(&resolved);
    }
    Ok((resolved, false))
}

/// One leg, read with `FetchCall`; a 404 or a refusal to read is a [`LegError`].
async fn fetch_leg(client: &Client, options: &Options, call: CallSid) -> Result<CallLeg, Error> {
    orchestrator::run(client.clone(), options.clone(), Ok(FetchCall { call }))
        .await
        .map_err(|e| reading(call, e))
}

/// The children of `parent`, every page, in Twilio's order.
async fn list_children(
    client: &Client,
    options: &Options,
    parent: CallSid,
) -> Result<Vec<CallLeg>, Error> {
    every_page(client, options, |page| ListCalls { parent, page })
        .await
        .map_err(|e| reading(parent, e))
}

/// Every item of a list operation, following Twilio's paging to the last page, in order.
async fn every_page<T, O>(
    client: &Client,
    options: &Options,
    page_of: impl Fn(Page) -> O,
) -> Result<Vec<T>, Error>
where
    O: Operation<Output = (Vec<T>, Option<Page>)>,
{
    let mut items = Vec::new();
    let mut page = Page::first();
    loop {
        let (found, next) =
            orchestrator::run(client.clone(), options.clone(), Ok(page_of(page))).await?;
        items.extend(found);
        match next {
            Some(next) => page = next,
            None => return Ok(items),
        }
    }
}

/// What a read's failure means for the call asked about.
fn reading(call: CallSid, error: Error) -> Error {
    let status = error.status().map(|s| s.as_u16());
    if matches!(error, Error::Leg(_)) {
        return error;
    }
    match status {
        Some(404) => Error::Leg(Box::new(LegError::CallNotFound {
            call,
            source: Box::new(error),
        })),
        Some(401 | 403) => Error::Leg(Box::new(LegError::NotPermitted {
            call,
            source: Box::new(error),
        })),
        _ => error,
    }
}

/// Where a list continues: Twilio's `Page` and `PageToken` from a `next_page_uri`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Page {
    page: Option<u64>,
    token: Option<String>,
}

impl Page {
    fn first() -> Self {
        Page::default()
    }

    /// The page a `next_page_uri` points to; `None` when there is none (the last page).
    /// Twilio writes it as a path with the paging parameters in its query
    /// (`…/Calls.json?PageSize=50&Page=1&PageToken=PA…`).
    fn next(next_page_uri: Option<&str>) -> Option<Self> {
        let uri = next_page_uri.filter(|u| !u.is_empty())?;
        let query = uri.split_once('?').map_or("", |(_, q)| q);
        let mut page = Page::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "Page" => page.page = value.parse().ok(),
                "PageToken" => page.token = Some(value.into_owned()),
                _ => {}
            }
        }
        Some(page)
    }
}

/// The number of a page: `PAGE_SIZE`, which is never zero.
fn page_size() -> std::num::NonZeroU64 {
    std::num::NonZeroU64::new(PAGE_SIZE).unwrap_or(std::num::NonZeroU64::MIN)
}

/// A decoded leg, or the `Decode` error that says what is missing.
fn leg_from(
    call: types::Call,
    operation: &'static str,
    request: &RequestInfo,
) -> Result<CallLeg, Error> {
    let decode = |reason: String| Error::Decode {
        request: Box::new(request.clone()),
        status: reqwest::StatusCode::OK,
        reason,
        body_excerpt: serde_json::to_string(&call).unwrap_or_default(),
    };
    let call_sid = match call.sid.as_deref().map(str::parse::<CallSid>) {
        Some(Ok(sid)) => sid,
        Some(Err(e)) => return Err(decode(format!("{operation}: field `sid`: {e}"))),
        None => return Err(decode(format!("{operation}: field `sid` is missing"))),
    };
    let parent_call_sid = match call.parent_call_sid.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<CallSid>()
                .map_err(|e| decode(format!("{operation}: field `parent_call_sid`: {e}")))?,
        ),
    };
    Ok(CallLeg {
        call_sid,
        parent_call_sid,
        direction: call.direction,
        from: call.from,
        to: call.to,
        status: call.status,
    })
}

/// `FetchCall`.
struct FetchCall {
    call: CallSid,
}

impl Operation for FetchCall {
    const NAME: &'static str = "FetchCall";
    const METHOD: &'static str = "GET";
    type Body = types::Call;
    type Output = CallLeg;

    fn call_sid(&self) -> Option<&CallSid> {
        Some(&self.call)
    }

    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a {
        api.fetch_call(account, &self.call)
    }

    fn output(
        self,
        body: types::Call,
        _account: AccountSid,
        request: RequestInfo,
    ) -> Result<CallLeg, Error> {
        leg_from(body, Self::NAME, &request)
    }
}

/// One page of `ListCall` with `ParentCallSid`.
struct ListCalls {
    parent: CallSid,
    page: Page,
}

impl Operation for ListCalls {
    const NAME: &'static str = "ListCall";
    const METHOD: &'static str = "GET";
    type Body = types::ListCallResponse;
    type Output = (Vec<CallLeg>, Option<Page>);

    fn call_sid(&self) -> Option<&CallSid> {
        Some(&self.parent)
    }

    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a {
        api.list_call(
            account,
            None,
            self.page.page,
            Some(page_size()),
            self.page.token.as_deref(),
            Some(&self.parent),
            None,
            None,
        )
    }

    fn output(
        self,
        body: types::ListCallResponse,
        _account: AccountSid,
        request: RequestInfo,
    ) -> Result<Self::Output, Error> {
        let legs = body
            .calls
            .into_iter()
            .map(|call| leg_from(call, Self::NAME, &request))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((legs, Page::next(body.next_page_uri.as_deref())))
    }
}

/// One page of `ListParticipant`: the participants' own legs.
struct ListParticipants {
    conference: ConferenceSid,
    page: Page,
}

impl Operation for ListParticipants {
    const NAME: &'static str = "ListParticipant";
    const METHOD: &'static str = "GET";
    type Body = types::ListParticipantResponse;
    type Output = (Vec<CallSid>, Option<Page>);

    fn call_sid(&self) -> Option<&CallSid> {
        None
    }

    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a {
        api.list_participant(
            account,
            &self.conference,
            self.page.page,
            Some(page_size()),
            self.page.token.as_deref(),
        )
    }

    fn output(
        self,
        body: types::ListParticipantResponse,
        _account: AccountSid,
        request: RequestInfo,
    ) -> Result<Self::Output, Error> {
        let calls = body
            .participants
            .into_iter()
            .map(|p| match p.call_sid.as_deref().map(str::parse::<CallSid>) {
                Some(Ok(sid)) => Ok(sid),
                other => Err(Error::Decode {
                    request: Box::new(request.clone()),
                    status: reqwest::StatusCode::OK,
                    reason: match other {
                        Some(Err(e)) => format!("ListParticipant: field `call_sid`: {e}"),
                        _ => "ListParticipant: field `call_sid` is missing".to_owned(),
                    },
                    body_excerpt: serde_json::to_string(&p).unwrap_or_default(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((calls, Page::next(body.next_page_uri.as_deref())))
    }
}

/// Every participant's leg of `conference`, every page, in Twilio's order.
pub(crate) async fn participants(
    client: &Client,
    options: &Options,
    conference: ConferenceSid,
) -> Result<Vec<CallSid>, Error> {
    every_page(client, options, |page| ListParticipants {
        conference,
        page,
    })
    .await
}

impl Client {
    /// The legs of `call` on which a Voice SDK client is, each with its call SID and the
    /// client's identity: from the Call resource, the given leg (any leg of the call), its
    /// parent and the parent's children, parent first. Cached per call once connected (see
    /// [`send_message`](Self::send_message)'s `.to_client()`).
    ///
    /// ```no_run
    /// # async fn f(client: twilio_call_messages::Client) -> Result<(), twilio_call_messages::Error> {
    /// for leg in client.client_legs("CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await? {
    ///     println!("{} is on {}", leg.identity, leg.call_sid);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn client_legs(&self, call: impl IntoSid<CallSid>) -> Result<Vec<ClientLeg>, Error> {
        let call = call.into_sid()?;
        let (resolved, _) = resolve(self, &Options::default(), call, true).await?;
        Ok(resolved.clients.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::cache::{CLIENT_LEG_CACHE_CAPACITY, LegCache};
    use super::*;

    const PARENT: &str = "CA00000000000000000000000000000001";
    const CHILD: &str = "CA00000000000000000000000000000002";

    fn leg(sid: &str, parent: Option<&str>, direction: &str, from: &str, to: &str) -> CallLeg {
        CallLeg {
            call_sid: sid.parse().unwrap(),
            parent_call_sid: parent.map(|p| p.parse().unwrap()),
            direction: Some(direction.to_owned()),
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            status: Some("in-progress".to_owned()),
        }
    }

    fn identity(leg: &CallLeg) -> Option<String> {
        client_on(leg).map(|c| c.identity)
    }

    #[test]
    fn the_client_is_read_from_the_side_its_direction_names() {
        // Placed by the client: the inbound parent's `from`.
        let placed = leg(PARENT, None, "inbound", "client:alice", "+15005550006");
        assert_eq!(identity(&placed).as_deref(), Some("alice"));
        // Accepted: the outbound-dial child's `to`; its `from` (the caller) is not a client.
        let accepted = leg(
            CHILD,
            Some(PARENT),
            "outbound-dial",
            "+15005550006",
            "client:bob",
        );
        assert_eq!(identity(&accepted).as_deref(), Some("bob"));
        // Called by the REST API (a conference participant, say).
        let api = leg(PARENT, None, "outbound-api", "+15005550006", "client:carol");
        assert_eq!(identity(&api).as_deref(), Some("carol"));
        // The other side's client does not count: it is on the other leg.
        let other_side = leg(PARENT, None, "inbound", "+15005550006", "client:bob");
        assert_eq!(identity(&other_side), None);
        let other_side = leg(
            CHILD,
            Some(PARENT),
            "outbound-dial",
            "client:alice",
            "+1500",
        );
        assert_eq!(identity(&other_side), None);
        // Phones, an empty name, an unknown direction: no client.
        assert_eq!(identity(&leg(PARENT, None, "inbound", "+1", "+2")), None);
        assert_eq!(
            identity(&leg(PARENT, None, "inbound", "client:", "+2")),
            None
        );
        assert_eq!(
            identity(&leg(PARENT, None, "trunking", "client:a", "client:b")),
            None
        );
        // A leg that ended, or has not started, takes no message.
        for status in ["completed", "canceled", "queued", "no-answer"] {
            let mut ended = leg(PARENT, None, "inbound", "client:alice", "+1");
            ended.status = Some(status.to_owned());
            assert_eq!(identity(&ended), None, "{status}");
        }
        let mut ringing = leg(PARENT, None, "inbound", "client:alice", "+1");
        ringing.status = Some("ringing".to_owned());
        assert_eq!(identity(&ringing).as_deref(), Some("alice"));
    }

    #[test]
    fn what_was_found_names_kinds_not_numbers() {
        let phone = leg(PARENT, None, "inbound", "+15005550006", "sip:a@b.example");
        assert_eq!(
            phone.to_string(),
            format!("{PARENT} inbound from a phone number to a SIP address (in-progress)")
        );
        let error = LegError::NoClient {
            call: PARENT.parse().unwrap(),
            found: vec![
                phone,
                leg(CHILD, Some(PARENT), "outbound-dial", "x", "client:b"),
            ],
        };
        let text = error.to_string();
        assert!(!text.contains("5005550006"), "{text}");
        assert!(
            text.contains("outbound-dial from another endpoint to \"client:b\""),
            "{text}"
        );
    }

    #[test]
    fn pages_continue_from_next_page_uri() {
        assert_eq!(Page::next(None), None);
        assert_eq!(Page::next(Some("")), None);
        let next = Page::next(Some(
            "/2010-04-01/Accounts/AC1/Calls.json?ParentCallSid=CA1&PageSize=2&Page=1&PageToken=PA%2Bx",
        ));
        assert_eq!(
            next,
            Some(Page {
                page: Some(1),
                token: Some("PA+x".to_owned()),
            })
        );
    }

    fn resolved(legs: Vec<CallLeg>) -> Arc<Resolved> {
        let clients = legs.iter().filter_map(client_on).collect();
        Arc::new(Resolved { legs, clients })
    }

    #[test]
    fn one_client_is_chosen_two_need_a_name() {
        let call: CallSid = PARENT.parse().unwrap();
        let both = resolved(vec![
            leg(PARENT, None, "inbound", "client:alice", "client:bob"),
            leg(
                CHILD,
                Some(PARENT),
                "outbound-dial",
                "client:alice",
                "client:bob",
            ),
        ]);
        assert!(matches!(
            choose(call, &both, None),
            Err(Error::Leg(e)) if matches!(*e, LegError::SeveralClients { ref clients, .. } if clients.len() == 2)
        ));
        assert_eq!(
            choose(call, &both, Some("bob"))
                .unwrap()
                .call_sid
                .to_string(),
            CHILD
        );
        assert!(matches!(
            choose(call, &both, Some("carol")),
            Err(Error::Leg(e)) if matches!(*e, LegError::NoSuchClient { .. })
        ));
        let phones = resolved(vec![leg(PARENT, None, "inbound", "+1", "+2")]);
        assert!(matches!(
            choose(call, &phones, None),
            Err(Error::Leg(e)) if matches!(*e, LegError::NoClient { ref found, .. } if found.len() == 1)
        ));
    }

    #[test]
    fn the_cache_maps_every_leg_is_bounded_and_forgets_a_whole_call() {
        let cache = LegCache::default();
        let call = resolved(vec![
            leg(PARENT, None, "inbound", "client:alice", "+1"),
            leg(CHILD, Some(PARENT), "outbound-dial", "client:alice", "+1"),
        ]);
        cache.put(&call);
        assert!(cache.get(&PARENT.parse().unwrap()).is_some());
        assert!(cache.get(&CHILD.parse().unwrap()).is_some());
        cache.forget(&CHILD.parse().unwrap());
        assert!(cache.get(&PARENT.parse().unwrap()).is_none());
        assert_eq!(cache.len(), 0);
        for n in 0..CLIENT_LEG_CACHE_CAPACITY + 5 {
            let sid = format!("CA{n:032x}");
            cache.put(&resolved(vec![leg(
                &sid, None, "inbound", "client:a", "+1",
            )]));
        }
        assert_eq!(cache.len(), CLIENT_LEG_CACHE_CAPACITY);
        // The oldest went first.
        assert!(
            cache
                .get(&format!("CA{:032x}", 0).parse().unwrap())
                .is_none()
        );
        let newest = format!("CA{:032x}", CLIENT_LEG_CACHE_CAPACITY + 4);
        assert!(cache.get(&newest.parse().unwrap()).is_some());
    }
}
