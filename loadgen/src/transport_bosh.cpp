// XMPP over BOSH under the Client: bosh::Session decides which request goes when, this maps
// requests onto two links (one request in flight per connection, as HTTP/1.1 without
// pipelining), reads each link's response (http::ResponseReader) and hands the bodies back to
// the session in rid order. A response with "Connection: close" (or ended by the close) makes
// the Client close that link; the next request on it reconnects. A request whose connection
// closes before any byte of its response is sent once more on a new connection (the same rid:
// XEP-0124 lets a client resend a request it got no answer to).
//
// Error kinds: http:<status> (an answer other than 200), bosh:http (a malformed or oversized
// HTTP response, bytes nobody asked for), bosh:protocol (a body that is not a <body/>, no sid),
// bosh:<condition> (the server terminated the session with that condition, e.g.
// bosh:item-not-found, bosh:improper-addressing; a <stream:error> inside is reported by the
// Client as stream:<condition> first), closed (a connection closed inside a response).
#include "core/bosh.hpp"
#include "core/http_response.hpp"
#include "core/stanzas.hpp"
#include "core/websocket.hpp"
#include "transport.hpp"

namespace xs::loadgen {

namespace {

class BoshTransport final : public Transport {
public:
    explicit BoshTransport(const TransportSpec& s) : Transport(2), spec_(s), slots_(2) {}
    const char* name() const override { return "bosh"; }
    std::uint64_t requests() const override { return requests_; }

    In connected(std::size_t link) override {
        slots_[link].up = true;
        if (started_) return In::Ok;
        started_ = true;
        return In::Established;  // the Client opens the stream: the session creation request
    }

    In input(std::size_t link, const char* data, std::size_t n, xml::StreamParser& parser) override {
        Slot& s = slots_[link];
        if (!s.busy) return fail("bosh:http", "bytes on a connection without a request");
        switch (s.reader.feed(data, n)) {
            case http::ResponseReader::Result::NeedMore: return In::Ok;
            case http::ResponseReader::Result::Error: return fail("bosh:http", s.reader.error());
            case http::ResponseReader::Result::Done: return answered(link, parser);
        }
        return In::Ok;
    }

    In eof(std::size_t link, xml::StreamParser& parser) override {
        Slot& s = slots_[link];
        s.up = false;
        if (!s.busy) return In::Ok;  // an idle keep-alive connection: reconnect when needed
        if (s.reader.bytes_seen() == 0 && !s.retried) {
            s.retried = true;
            out_[link].bytes += s.request;
            return In::Ok;
        }
        if (s.reader.finish() == http::ResponseReader::Result::Done) return answered(link, parser);
        return fail("closed", s.reader.error());
    }

    // The server ended the session. After our own terminate, once no request is out: the
    // server answers every held request, and closing a connection whose answer is on its way
    // would reset it.
    bool peer_closed() const override {
        if (!peer_closed_) return false;
        return !session_->terminate_sent() || (!slots_[0].busy && !slots_[1].busy);
    }

    void open(std::string_view domain) override {
        need_header_ = true;  // the Client reset its parser: a new stream
        if (!session_) {
            bosh::SessionParams p;
            p.to = std::string(domain);
            p.wait = spec_.bosh_wait;
            session_.emplace(std::move(p), bosh::initial_rid());
        } else {
            session_->restart();
        }
        pump();
    }

    void close() override {
        if (!session_) return;
        session_->terminate();
        pump();
    }

    void send(std::string_view xml) override {
        if (!session_) return;
        session_->queue(ws::with_client_ns(xml));
        pump();
    }

private:
    struct Slot {
        bool busy = false;      // a request is out on this link
        bool up = false;        // the link has a connection (as far as we know)
        bool retried = false;
        std::uint64_t rid = 0;
        std::string request;    // kept until answered, to resend once
        http::ResponseReader reader;
    };

    // Sends every request the session allows now, each on a free link (a connected one first).
    void pump() {
        while (auto r = session_->next()) {
            std::size_t k = slots_.size();
            for (std::size_t i = 0; i < slots_.size(); ++i)
                if (!slots_[i].busy && (k == slots_.size() || (slots_[i].up && !slots_[k].up))) k = i;
            if (k == slots_.size()) return;  // cannot happen: the session's limit is at most 2
            Slot& s = slots_[k];
            s.busy = true;
            s.retried = false;
            s.rid = r->rid;
            s.request = bosh::post_request(spec_.http_target, spec_.http_host, r->body);
            s.reader.reset();
            out_[k].bytes += s.request;
            ++requests_;
        }
    }

    In answered(std::size_t link, xml::StreamParser& parser) {
        Slot& s = slots_[link];
        if (s.reader.status() != 200)
            return fail("http:" + std::to_string(s.reader.status()),
                        "BOSH request answered with status " + std::to_string(s.reader.status()));
        if (!s.reader.extra().empty()) return fail("bosh:http", "bytes after the response");
        if (!s.reader.keep_alive()) {
            out_[link].close = true;
            s.up = false;
        }
        s.busy = false;
        s.request.clear();
        std::string inner;
        auto st = session_->on_response(s.rid, std::move(s.reader.body()), inner);
        s.reader.reset();
        if (!inner.empty()) {
            if (need_header_) parser.feed(kSyntheticHeader);
            need_header_ = false;
            parser.feed(inner);
        }
        switch (st) {
            case bosh::Session::Status::Error:
                return fail("bosh:protocol", session_->error());
            case bosh::Session::Status::Terminated:
                peer_closed_ = true;
                if (!session_->terminate_sent() && !session_->condition().empty())
                    return fail("bosh:" + session_->condition(), "the server terminated the session");
                return In::Ok;
            case bosh::Session::Status::Ok:
                break;
        }
        pump();
        return In::Ok;
    }

    TransportSpec spec_;
    std::vector<Slot> slots_;
    std::optional<bosh::Session> session_;
    bool started_ = false;
    bool need_header_ = true;
    bool peer_closed_ = false;
    std::uint64_t requests_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_bosh_transport(const TransportSpec& spec) {
    return std::make_unique<BoshTransport>(spec);
}

}  // namespace xs::loadgen
