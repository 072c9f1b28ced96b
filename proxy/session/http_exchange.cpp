// HTTP exchanges on one client connection: the door frames each response; when one ends, the
// backend connection goes to the worker's idle pool (or is closed) and the client connection
// either waits for its next request, routed on its own, or is closed.
#include "session/host.hpp"
#include "session/session.hpp"
#include "tls/tls_stream.hpp"
#include "upstream/backend_state.hpp"
#include "util/log.hpp"

namespace xs::session {

void Session::on_response(const char* data, std::size_t len) {
    std::string out;
    Relayed r = door_->response(std::string_view(data, len), cfg().backends[backend_index_], *listener_cell_, out);
    if (!out.empty()) {
        count(kClient, out.size());
        to_client(out.data(), out.size());
    }
    metrics::count_http_status(backend_cell_->http_responses, r.status);
    switch (r.step) {
        case Relayed::Step::More:
            return;
        case Relayed::Step::Bad:
            log::warn("backend ", cfg().backends[backend_index_].name, ": ", r.detail);
            finish(EndReason::BackendError);
            return;
        case Relayed::Step::Upgraded:
            held_ = r.held;
            door_.reset();  // no refusal after this point
            after_answer();
            return;
        case Relayed::Step::Done:
            exchange_done(r.used < len);
            return;
    }
}

// The live-session counts on the backend, taken when it answered: at the end of an HTTP exchange
// (a keep-alive connection counts as a session on a backend while one of its requests is
// there) and at the session's end.
void Session::end_exchange() {
    if (counted_live_) {
        backend_state_->session_ended();
        counted_live_ = false;
    }
    if (session_cell_) {
        session_cell_->active.add(-1);
        session_cell_ = nullptr;
    }
}

// The response ended (`stray`: the backend sent bytes past it, so its connection is not reused).
void Session::exchange_done(bool stray) {
    ++exchanges_;
    bool relaying = state_ == State::Relaying;
    bool keep_backend = relaying && !stray && door_->backend_reusable() && !finished_[kBackend] &&
                        pending_[kBackend] == 0 && write_error_[kBackend] == 0;
    bool keep_client = relaying && door_->client_keeps() && !finished_[kClient] && !host_.draining();
    end_exchange();
    if (keep_backend) park_backend();
    else discard_backend();
    if (!keep_client) {
        door_.reset();
        if (relaying) set_state(State::Closing);
        reason_ = EndReason::ClientClosed;
        start_timer(cfg().proxy.close_linger);
        set_reading(kClient, true);  // to notice its FIN; what it still sends is dropped
        if (tls_) close_tls();
        shutdown_side(kClient);
        return;
    }
    set_state(State::Opening);
    start_timer(cfg().proxy.keepalive_timeout);
    on_verdict(door_->next());
    if (state_ == State::Opening) set_reading(kClient, true);
}

void Session::end_if_idle() {
    CallbackScope scope(this);
    if (state_ == State::Opening && exchanges_ > 0 && door_->idle()) finish(EndReason::Idle);
}

}  // namespace xs::session
