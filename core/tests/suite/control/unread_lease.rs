//! A lease that reaches its holder after the holder finished goes back to the pool by the core's
//! rule (`Control::handle_unread_lease`), for a WebSocket session and an HTTP turn alike.
//!
//! The race: a holder's client leaves while its conn is being dialed; its task ends, and its
//! `Close` reaches the control plane only after the dial, whose conn the pool leases to the
//! holder it still knows. Nobody will take that lease or release it.

use serde_json::json;
use wsv2_core::SessionId;

use crate::support::gateway::{Dial, Gateway, account, body};

/// A gateway whose dials stay in flight until the test lets them open
fn gateway() -> Gateway {
    let mut gw = Gateway::new(vec![account(1, false)]);
    gw.set_dial(1, Dial::Hang);
    gw
}

/// The holder's task ends while its dial is in flight; the dial opens, then its `Close` arrives
fn end_during_the_dial(gw: &mut Gateway, holder: SessionId) {
    assert_eq!(gw.hanging.len(), 1, "a dial for the holder is in flight");
    assert_eq!(gw.control.stats().leased, 0);
    gw.task_ended(holder);
    gw.finish_hanging(true);
    gw.close(holder);
}

/// The conn went back to the pool: idle, leased to nobody, and the next holder takes it
/// without a dial
fn assert_back_in_the_pool(gw: &mut Gateway) {
    let stats = gw.control.stats();
    assert_eq!(
        (stats.leased, stats.idle),
        (0, 1),
        "the unread lease went back to the pool"
    );
    let next = gw.post(9, body(true, true, None));
    assert_eq!(gw.hanging.len(), 0, "no second dial");
    assert_eq!(
        gw.conn_of(next),
        gw.dials[0].0,
        "the next holder took the returned conn"
    );
}

#[test]
fn a_lease_for_a_session_that_ended_during_its_dial_goes_back_to_the_pool() {
    let mut gw = gateway();
    let s = gw.open_session(1);
    gw.session_text(
        s,
        json!({"type": "response.create", "model": "client-model", "input": "hi"}),
    );
    end_during_the_dial(&mut gw, s);
    assert_back_in_the_pool(&mut gw);
}

#[test]
fn a_lease_for_an_http_turn_that_ended_during_its_dial_goes_back_to_the_pool() {
    let mut gw = gateway();
    let t = gw.post(1, body(true, true, None));
    end_during_the_dial(&mut gw, t);
    assert_back_in_the_pool(&mut gw);
}
