#include "upstream/srv_resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace xs::upstream {

std::optional<uint32_t> dns_min_ttl(const unsigned char* msg, std::size_t len, uint16_t type) {
    if (!msg || len < 12) return std::nullopt;
    auto u16 = [&](std::size_t at) { return static_cast<uint16_t>(msg[at] << 8 | msg[at + 1]); };
    auto skip_name = [&](std::size_t& p) {
        for (int labels = 0; labels < 128; ++labels) {
            if (p >= len) return false;
            unsigned char c = msg[p];
            if (c == 0) return ++p, true;
            if ((c & 0xC0) == 0xC0) return p + 2 <= len ? (p += 2, true) : false;
            if (c & 0xC0) return false;
            p += 1u + c;
        }
        return false;
    };
    std::size_t pos = 12;
    for (unsigned i = 0, n = u16(4); i < n; ++i) {
        if (!skip_name(pos) || pos + 4 > len) return std::nullopt;
        pos += 4;
    }
    std::optional<uint32_t> best;
    for (unsigned i = 0, n = u16(6); i < n; ++i) {
        if (!skip_name(pos) || pos + 10 > len) return std::nullopt;
        uint16_t rtype = u16(pos);
        uint32_t ttl = static_cast<uint32_t>(u16(pos + 4)) << 16 | u16(pos + 6);
        if (ttl > 0x7fffffffu) ttl = 0;  // RFC 2181 8: a TTL with the top bit set counts as 0
        std::size_t rdlen = u16(pos + 8);
        pos += 10;
        if (pos + rdlen > len) return std::nullopt;
        pos += rdlen;
        if (rtype == type) best = best ? std::min(*best, ttl) : ttl;
    }
    return best;
}

namespace {

struct Lookup {
    SrvResolver::Done done;
    SrvAnswer answer;
    std::size_t pending = 0;
    bool cancelled = false;
    void* impl = nullptr;
};

struct TargetLookup {
    Lookup* lookup;
    std::size_t index;
};

void finish_one(Lookup* lk) {
    if (--lk->pending > 0) return;
    if (!lk->cancelled) lk->done(std::move(lk->answer));
    delete lk;
}

}  // namespace

struct SrvResolver::Impl {
    uv_loop_t* loop = nullptr;
    ares_channel channel = nullptr;
    uv_timer_t timer{};
    std::map<ares_socket_t, uv_poll_t*> polls;
    SrvResolver* self = nullptr;
    std::size_t closing_handles = 0;
    bool closed = false;

    static Impl* of(uv_handle_t* h) { return static_cast<Impl*>(h->data); }

    void arm_timer() {
        if (closed) return;
        timeval tv{};
        if (timeval* t = ares_timeout(channel, nullptr, &tv)) {
            uint64_t ms = static_cast<uint64_t>(t->tv_sec) * 1000 + static_cast<uint64_t>(t->tv_usec) / 1000;
            uv_timer_start(&timer, [](uv_timer_t* tm) {
                Impl* im = of(reinterpret_cast<uv_handle_t*>(tm));
                ares_process_fd(im->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
                im->arm_timer();
            }, std::max<uint64_t>(ms, 1), 0);
        } else {
            uv_timer_stop(&timer);
        }
    }

    void handle_closed() {
        if (--closing_handles == 0 && closed) {
            delete self;
            delete this;
        }
    }

    void close_poll(uv_poll_t* p) {
        uv_poll_stop(p);
        ++closing_handles;
        uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) {
            Impl* im = of(h);
            delete reinterpret_cast<uv_poll_t*>(h);
            im->handle_closed();
        });
    }

    // c-ares opens, watches and closes its sockets; a poll handle follows each.
    static void sock_state(void* data, ares_socket_t fd, int readable, int writable) {
        Impl* im = static_cast<Impl*>(data);
        auto it = im->polls.find(fd);
        if (!readable && !writable) {
            if (it != im->polls.end()) {
                im->close_poll(it->second);
                im->polls.erase(it);
            }
            return;
        }
        uv_poll_t* p = it != im->polls.end() ? it->second : nullptr;
        if (!p) {
            p = new uv_poll_t;
            if (uv_poll_init_socket(im->loop, p, fd) != 0) {
                delete p;  // c-ares times the query out
                return;
            }
            p->data = im;
            im->polls[fd] = p;
        }
        uv_poll_start(p, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                      [](uv_poll_t* h, int status, int events) {
                          Impl* imp = of(reinterpret_cast<uv_handle_t*>(h));
                          uv_os_fd_t s = -1;
                          uv_fileno(reinterpret_cast<uv_handle_t*>(h), &s);
                          bool err = status < 0;
                          ares_process_fd(imp->channel, (err || (events & UV_READABLE)) ? s : ARES_SOCKET_BAD,
                                          (err || (events & UV_WRITABLE)) ? s : ARES_SOCKET_BAD);
                          imp->arm_timer();
                      });
    }

    static void on_addresses(void* arg, int status, int, ares_addrinfo* res) {
        auto* t = static_cast<TargetLookup*>(arg);
        Lookup* lk = t->lookup;
        SrvTarget& target = lk->answer.targets[t->index];
        if (status == ARES_EDESTRUCTION) {
            lk->cancelled = true;
        } else if (status != ARES_SUCCESS || !res) {
            target.error = ares_strerror(status);
        } else {
            for (ares_addrinfo_node* n = res->nodes; n; n = n->ai_next) {
                if (n->ai_addrlen > sizeof(sockaddr_storage)) continue;
                config::SocketAddress a;
                std::memcpy(&a.storage, n->ai_addr, n->ai_addrlen);
                a.len = static_cast<socklen_t>(n->ai_addrlen);
                uint16_t port = htons(target.record.port);
                if (n->ai_family == AF_INET) reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = port;
                else if (n->ai_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = port;
                else continue;
                target.addresses.push_back(a);
                uint32_t ttl = n->ai_ttl > 0 ? static_cast<uint32_t>(n->ai_ttl) : 0;
                lk->answer.ttl = std::min(lk->answer.ttl, ttl);
            }
            if (target.addresses.empty()) target.error = "no IPv4 or IPv6 address";
        }
        if (res) ares_freeaddrinfo(res);
        delete t;
        finish_one(lk);
    }

    static void on_srv(void* arg, int status, int, unsigned char* abuf, int alen) {
        auto* lk = static_cast<Lookup*>(arg);
        Impl* im = static_cast<Impl*>(lk->impl);
        if (status == ARES_EDESTRUCTION) lk->cancelled = true;
        ares_srv_reply* srv = nullptr;
        if (status != ARES_SUCCESS) {
            lk->answer.error = ares_strerror(status);
        } else if (int rc = ares_parse_srv_reply(abuf, alen, &srv); rc != ARES_SUCCESS) {
            lk->answer.error = std::string("unreadable SRV answer: ") + ares_strerror(rc);
        } else {
            for (ares_srv_reply* r = srv; r; r = r->next)
                lk->answer.targets.push_back({{r->host, r->port, r->priority, r->weight}, {}, {}});
            ares_free_data(srv);
            if (lk->answer.targets.empty()) lk->answer.error = "no SRV records";
            lk->answer.ok = !lk->answer.targets.empty();
            lk->answer.ttl = dns_min_ttl(abuf, static_cast<std::size_t>(alen), ns_t_srv).value_or(0);
        }
        if (!lk->answer.ok || lk->cancelled) return finish_one(lk);
        // Addresses may answer at once (hosts file, literals): count before starting them.
        lk->pending += lk->answer.targets.size();
        for (std::size_t i = 0; i < lk->answer.targets.size(); ++i) {
            ares_addrinfo_hints hints{};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            ares_getaddrinfo(im->channel, lk->answer.targets[i].record.target.c_str(), nullptr, &hints,
                             on_addresses, new TargetLookup{lk, i});
        }
        finish_one(lk);
    }
};

SrvResolver* SrvResolver::create(uv_loop_t* loop, const std::vector<std::string>& servers, std::string* err) {
    static std::once_flag once;
    static int lib = ARES_SUCCESS;
    std::call_once(once, [] { lib = ares_library_init(ARES_LIB_INIT_ALL); });
    if (lib != ARES_SUCCESS) {
        if (err) *err = std::string("c-ares: ") + ares_strerror(lib);
        return nullptr;
    }
    auto* im = new Impl;
    im->loop = loop;
    ares_options opts{};
    opts.sock_state_cb = &Impl::sock_state;
    opts.sock_state_cb_data = im;
    opts.timeout = 2000;  // ms per try (ARES_OPT_TIMEOUTMS)
    opts.tries = 2;
    int rc = ares_init_options(&im->channel, &opts, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc == ARES_SUCCESS && !servers.empty()) {
        std::string csv;
        for (const auto& s : servers) csv += (csv.empty() ? "" : ",") + s;
        rc = ares_set_servers_ports_csv(im->channel, csv.c_str());
        if (rc != ARES_SUCCESS) ares_destroy(im->channel);
    }
    if (rc != ARES_SUCCESS) {
        if (err) *err = std::string("c-ares: ") + ares_strerror(rc);
        delete im;
        return nullptr;
    }
    uv_timer_init(loop, &im->timer);
    im->timer.data = im;
    im->self = new SrvResolver(im);
    return im->self;
}

void SrvResolver::resolve(const std::string& name, Done done) {
    auto* lk = new Lookup;
    lk->done = std::move(done);
    lk->pending = 1;
    lk->impl = impl_;
    lk->answer.ttl = UINT32_MAX;
    ares_search(impl_->channel, name.c_str(), ns_c_in, ns_t_srv, &Impl::on_srv, lk);
    impl_->arm_timer();
}

void SrvResolver::close() {
    Impl* im = impl_;
    ares_destroy(im->channel);  // pending lookups end with ARES_EDESTRUCTION: no `done`
    im->closed = true;
    for (auto& [fd, p] : im->polls) im->close_poll(p);
    im->polls.clear();
    ++im->closing_handles;
    uv_close(reinterpret_cast<uv_handle_t*>(&im->timer), [](uv_handle_t* h) { Impl::of(h)->handle_closed(); });
}

}  // namespace xs::upstream
