#include "runner.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/stanzas.hpp"
#include "core/websocket.hpp"

namespace xs::loadgen {

Runner::Runner(const Options& o) : o_(o) {}

Runner::~Runner() = default;

bool Runner::resolve(const std::string& hostport, sockaddr_storage& out) {
    std::string host;
    int port = 0;
    if (!split_host_port(hostport, host, port)) {
        error_ = "bad address " + hostport;
        return false;
    }
    if (host == "localhost") host = "127.0.0.1";
    std::memset(&out, 0, sizeof out);
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&out)) == 0) return true;
    if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&out)) == 0) return true;
    error_ = "not a numeric IP address: " + host;
    return false;
}

bool Runner::run() {
    uv_loop_init(&loop_);
    env_.loop = &loop_;
    tls_ = std::make_unique<TlsContext>();
    env_.tls = tls_.get();
    for (const std::string& s : o_.sources) {
        sockaddr_storage a;
        if (!resolve(s + ":1", a)) return false;
        reinterpret_cast<sockaddr_in*>(&a)->sin_port = 0;
        if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a)->sin6_port = 0;
        env_.sources.push_back(a);
    }
    rng_.seed(o_.seed ? o_.seed : uv_hrtime());
    prefix_ = o_.room_prefix;
    if (prefix_.empty()) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "lg%06x", static_cast<unsigned>(rng_() & 0xFFFFFF));
        prefix_ = buf;
    }

    report_.scenario = o_.scenario;
    report_.label = o_.label;
    auto set = [&](const char* k, const std::string& v) { report_.settings.emplace_back(k, v); };
    auto num = [](double v) {
        char b[32];
        std::snprintf(b, sizeof b, "%g", v);
        return std::string(b);
    };
    set("server", o_.server);
    std::string doms;
    for (const auto& d : o_.domains) doms += (doms.empty() ? "" : ",") + d;
    set("auth", std::string(auth_mode_name(o_.auth)) + (o_.starttls ? "+starttls" : ""));
    jitsi_ = o_.scenario == "jitsi" || o_.scenario == "jitsi-web";
    transport_cycle_ = transport_cycle(o_);
    set("transport", transport_setting(o_));
    bool ws = false, bosh = false;
    for (TransportKind k : transport_cycle_) {
        ws = ws || k == TransportKind::WebSocket;
        bosh = bosh || k == TransportKind::Bosh;
    }
    if (ws) set("ws_path", o_.ws_path);
    if (bosh) {
        set("bosh_path", o_.bosh_path);
        set("bosh_wait_s", num(o_.bosh_wait));
    }
    if ((ws || bosh) && !o_.http_host.empty()) set("http_host", o_.http_host);
    if (o_.tls) set("tls", ws && bosh ? "wss, https" : ws ? "wss" : "https");
    if (o_.scenario == "join-storm" || jitsi_) {
        set("domains", doms);
        set("rooms", num(o_.rooms));
        set("room_size", num(o_.room_size));
        set("participants", num(double(o_.rooms) * o_.room_size));
        set("stay_s", num(o_.stay));
        set("messages", num(o_.messages));
        set("presence_bytes", num(double(o_.presence_bytes)));
        set("join_spread_s", num(o_.join_spread));
    }
    if (o_.scenario == "brewery" || jitsi_) {
        set("brewery_server", o_.brewery_server);
        set("brewery_domain", o_.brewery_domain);
        set("bridges", num(o_.bridges));
        set("interval_s", num(o_.interval));
        set("stats_bytes", num(double(o_.stats_bytes)));
    }
    if (o_.scenario == "steady" || o_.scenario == "churn") {
        set("domains", doms);
        set("clients", num(o_.clients));
        if (o_.scenario == "steady") {
            set("rate", num(o_.rate));
            set("target", o_.to_room ? "room" : "self");
            if (o_.to_room) set("room_size", num(o_.room_size));
            set("warmup_s", num(o_.warmup));
        }
    }
    if (o_.scenario != "join-storm") set("duration_s", num(o_.duration));
    set("concurrency", num(o_.concurrency));
    set("connect_rate", num(o_.connect_rate));
    set("sources", num(double(std::max<std::size_t>(1, o_.sources.size()))));

    t0_us_ = now_us();
    watcher_ = std::make_unique<Watcher>(&loop_, o_.watch, o_.sample_interval, t0_us_);
    watcher_->start();
    if (o_.scenario == "steady" || o_.scenario == "churn") setup_steady();
    else setup_muc();
    if (!error_.empty()) {
        watcher_->stop();
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
        return false;
    }
    uv_timer_init(&loop_, &tick_);
    tick_.data = this;
    last_tick_us_ = now_us();
    uv_timer_start(&tick_, on_tick, 5, 5);
    pace();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    report_.procs = watcher_->summaries();
    return true;
}

std::size_t Runner::add_client(Role role, LoginSpec spec) {
    spec.connect_timeout = o_.connect_timeout;
    spec.login_timeout = o_.login_timeout;
    spec.starttls = o_.starttls;
    std::size_t i = clients_.size();
    clients_.push_back(std::make_unique<Client>(env_, *this, std::move(spec), i));
    actors_.emplace_back();
    actors_.back().role = role;
    report_.counts.add("clients", 1);
    if (!o_.transport_mix.empty() && (role == Role::Participant || role == Role::Session))
        report_.counts.add(std::string("clients_") + transport_name(clients_.back()->spec().transport.kind));
    return i;
}

TransportSpec Runner::client_transport(std::size_t n, const std::string& domain, const std::string& room) const {
    TransportSpec t;
    t.kind = transport_cycle_[n % transport_cycle_.size()];
    if (t.kind == TransportKind::Tcp) return t;
    const std::string& path = t.kind == TransportKind::Bosh ? o_.bosh_path : o_.ws_path;
    t.http_target = ws::with_query(path, o_.room_param, room);
    t.http_host = o_.http_host.empty() ? domain : o_.http_host;
    t.bosh_wait = o_.bosh_wait;
    t.tls = o_.tls;
    return t;
}

void Runner::enqueue(std::size_t first, std::size_t count) {
    if (queue_pos_ >= queue_.size()) {
        pace_start_us_ = now_us();
        paced_ = 0;
    }
    for (std::size_t k = 0; k < count; ++k) queue_.push_back(first + k);
}

bool Runner::queue_settled() const { return queue_pos_ >= queue_.size() && in_setup_ == 0; }

void Runner::pace() {
    std::uint64_t now = now_us();
    while (queue_pos_ < queue_.size() && in_setup_ < static_cast<std::size_t>(o_.concurrency)) {
        if (o_.connect_rate > 0) {
            double allowed = o_.connect_rate * static_cast<double>(now - pace_start_us_) / 1e6 + 1;
            if (static_cast<double>(paced_) >= allowed) break;
        }
        std::size_t i = queue_[queue_pos_++];
        ++paced_;
        ++in_setup_;
        ++open_clients_;
        if (!login_first_us_) login_first_us_ = now;
        clients_[i]->start();
    }
    if (queue_pos_ >= queue_.size() && queue_pos_ > 0 && queue_.size() > 4096) {
        queue_.clear();  // churn keeps appending: do not grow without bound
        queue_pos_ = 0;
    }
}

void Runner::on_tick(uv_timer_t* t) { static_cast<Runner*>(t->data)->tick(); }

void Runner::tick() {
    std::uint64_t now = now_us();
    if (phase_ == Phase::Done) return;
    if (elapsed() > o_.max_time && phase_ != Phase::Leave) {
        report_.aborted = true;
        record_error("run:max-time", "the run hit --max-time");
        leave_all();
    }
    pace();
    if (phase_ == Phase::Leave) {
        if (open_clients_ == 0 || since_phase(now) > 5'000'000) finish();
        last_tick_us_ = now;
        return;
    }
    if (o_.scenario == "steady") tick_steady(now);
    else if (o_.scenario == "churn") tick_churn(now);
    else tick_muc(now);
    last_tick_us_ = now;
}

void Runner::phase(Phase p, const char* name) {
    phase_ = p;
    phase_at_us_ = now_us();
    double t = elapsed();
    report_.phases.push_back({name, t});
    markers_.push_back({t, name});
    if (!o_.quiet) {
        std::fprintf(stderr, "[%7.2fs] %-8s logged_in=%llu joined=%llu errors=%llu\n", t, name,
                     static_cast<unsigned long long>(report_.counts.get("logged_in")),
                     static_cast<unsigned long long>(report_.counts.get("participants_joined") +
                                                     report_.counts.get("bridges_joined") +
                                                     report_.counts.get("sessions_joined")),
                     static_cast<unsigned long long>(report_.errors.total()));
    }
}

void Runner::record_error(const std::string& kind, const std::string& detail) {
    report_.errors.add(kind);
    if (!o_.quiet && report_.errors.get(kind) <= 3)
        std::fprintf(stderr, "[%7.2fs] error %s: %s\n", elapsed(), kind.c_str(), detail.c_str());
}

void Runner::on_ready(Client& c) {
    std::size_t i = c.index();
    Actor& a = actors_[i];
    if (in_setup_) --in_setup_;
    ++settled_;
    a.ready = true;
    report_.counts.add("logged_in");
    if (!o_.transport_mix.empty() && (a.role == Role::Participant || a.role == Role::Session))
        report_.counts.add(std::string("logged_in_") + transport_name(c.spec().transport.kind));
    report_.latency["connect"].add_us(c.t_connected_us - c.t_start_us);
    report_.latency["login"].add_us(c.t_ready_us - c.t_connected_us);
    login_last_us_ = c.t_ready_us;
    switch (a.role) {
        case Role::Focus:
        case Role::Bridge:
            send_join(i);
            break;
        case Role::Participant:
            break;  // joins in the storm
        case Role::Session:
            if (o_.scenario == "churn") {
                report_.counts.add("sessions_completed");
                report_.latency["session_setup"].add_us(c.t_ready_us - c.t_start_us);
                c.close_stream(2);
            } else if (o_.to_room) {
                send_join(i);
            }
            break;
    }
}

void Runner::on_failed(Client& c, const std::string& kind, const std::string& detail) {
    Actor& a = actors_[c.index()];
    if (!a.ready) {
        if (in_setup_) --in_setup_;
        ++settled_;
    }
    a.failed = true;
    if (a.join_sent_us && !a.join_done) {
        a.join_done = true;
        if (joins_pending_ && a.role != Role::Focus && a.role != Role::Bridge) --joins_pending_;
    }
    record_error(kind, detail);
}

void Runner::on_closed(Client& c) {
    std::size_t i = c.index();
    Actor& a = actors_[i];
    a.closed = true;
    if (open_clients_) --open_clients_;
    if (c.spec().transport.kind == TransportKind::Bosh) {  // how often connections were reused
        report_.counts.add("bosh_requests", c.transport_requests());
        report_.counts.add("bosh_connections", c.connections);
    }
    if (o_.scenario == "churn" && !churn_stop_ && phase_ != Phase::Leave && phase_ != Phase::Done) {
        a = Actor{};
        a.role = Role::Session;
        queue_.push_back(i);
        pace();
    }
}

void Runner::on_stanza(Client& c, xml::Element& st) {
    std::size_t i = c.index();
    Actor& a = actors_[i];
    std::string_view name = st.local_name();
    if (name == "message") {
        std::string_view type = st.attr_or("type");
        if (type == "error") {
            const xml::Element* e = st.child("error");
            std::string cond = e && !e->children.empty() ? std::string(e->children[0].local_name()) : "error";
            return record_error("message:" + cond, "message error");
        }
        // Our message to ourselves; without a login (--auth none, a stub backend echoing the
        // stream) there is no JID and the echo carries no from.
        if (type == "chat" && st.attr_or("from") == c.jid()) return message_echo(a, st.attr_or("id"));
    }
    if (name == "iq") {
        std::string_view type = st.attr_or("type");
        if (type == "get" || type == "set") {  // e.g. a server ping: answer, never leave it hanging
            std::string reply = "<iq type='result' id='" + xml::escape(st.attr_or("id")) + "'";
            if (auto f = st.attr("from")) reply += " to='" + xml::escape(*f) + "'";
            c.send(reply + "/>");
        }
        return;
    }
    if (!a.room_jid.empty()) muc_stanza(i, a, st);
}

void Runner::send_message(std::size_t i) {
    Actor& a = actors_[i];
    Client& c = *clients_[i];
    if (c.state() != Client::State::Ready) return;
    std::uint32_t seq = ++a.msg_seq;
    std::string id = "m" + std::to_string(seq);
    std::string body = "load message " + std::to_string(seq) + " from " + (a.nick.empty() ? c.jid() : a.nick);
    std::uint64_t now = now_us();
    a.inflight.emplace_back(seq, now);
    report_.counts.add("messages_sent");
    if (!a.room_jid.empty()) c.send(stanzas::groupchat(a.room_jid, id, body));
    else c.send(stanzas::chat(c.jid(), id, body));
}

void Runner::message_echo(Actor& a, std::string_view id) {
    if (id.size() < 2 || id[0] != 'm') return;
    std::uint32_t seq = 0;
    for (char ch : id.substr(1)) {
        if (ch < '0' || ch > '9') return;
        seq = seq * 10 + static_cast<std::uint32_t>(ch - '0');
    }
    for (auto it = a.inflight.begin(); it != a.inflight.end(); ++it) {
        if (it->first != seq) continue;
        std::uint64_t sent = it->second;
        a.inflight.erase(it);
        report_.counts.add("messages_echoed");
        bool measured = o_.scenario != "steady" || (window_start_us_ && sent >= window_start_us_ &&
                                                    (!window_end_us_ || sent < window_end_us_));
        if (measured) {
            report_.latency["message_rtt"].add_us(now_us() - sent);
            report_.counts.add("messages_measured");
        }
        return;
    }
}

void Runner::count_unanswered() {
    std::uint64_t n = 0;
    for (Actor& a : actors_) {
        n += a.inflight.size();
        a.inflight.clear();
    }
    if (n) {
        report_.errors.add("message:no-echo", n);
        if (!o_.quiet) std::fprintf(stderr, "[%7.2fs] %llu messages never came back\n", elapsed(),
                                    static_cast<unsigned long long>(n));
    }
}

void Runner::leave_all() {
    count_unanswered();
    for (std::size_t i = 0; i < clients_.size(); ++i) {
        Client& c = *clients_[i];
        Actor& a = actors_[i];
        if (c.state() == Client::State::Ready && a.joined && !a.room_jid.empty())
            c.send(stanzas::leave(a.room_jid + "/" + a.nick));
        c.close_stream(3);
    }
    queue_pos_ = queue_.size();
    phase(Phase::Leave, "leave");
}

void Runner::finish() {
    if (phase_ == Phase::Done) return;
    if (watcher_) watcher_->mark_window_end();
    phase(Phase::Done, "done");
    for (auto& c : clients_) c->abort();
    uv_timer_stop(&tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    watcher_->stop();
    report_.wall_s = elapsed();
    report_.window_start_s = window_start_us_ ? since_start(window_start_us_) : 0;
    report_.window_end_s = window_end_us_ ? since_start(window_end_us_) : report_.window_start_s;
    if (login_last_us_ > login_first_us_ && report_.counts.get("logged_in") > 1)
        report_.rates["logins_per_s"] = static_cast<double>(report_.counts.get("logged_in")) /
                                        (static_cast<double>(login_last_us_ - login_first_us_) / 1e6);
}

}  // namespace xs::loadgen
