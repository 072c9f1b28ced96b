// TlsStream against a real OpenSSL client, entirely in memory: handshakes with certificate
// verification, SNI and STARTTLS (`to`) selection, data both ways in any split, close_notify,
// resumption, garbage, and the store kept alive across a reload.
#include <catch2/catch.hpp>
#include <random>
#include <variant>

#include "pki.hpp"
#include "tls_client.hpp"

using namespace xs::tls;
using namespace xs::tls::test;

namespace {

struct Fixture {
    Pki pki;
    std::shared_ptr<const CertStore> store;
    Fixture() {
        auto a = pki.issue("a", {"meet.example.com", "*.meet.example.com"});
        auto b = pki.issue("b", {"auth.example.com"});
        auto r = CertStore::build({{a.cert, a.key, {"meet.example.com", "*.meet.example.com"}},
                                   {b.cert, b.key, {"auth.example.com"}}});
        REQUIRE(std::holds_alternative<std::shared_ptr<const CertStore>>(r));
        store = std::get<std::shared_ptr<const CertStore>>(r);
    }
    ClientOptions verified(const std::string& host, bool sni = true) const {
        ClientOptions o;
        o.ca_file = pki.ca_file();
        o.verify_host = host;
        if (sni) o.sni = host;
        return o;
    }
};

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    return s;
}

}  // namespace

TEST_CASE("tls stream: TLS 1.3 handshake, certificate verified, data both ways", "[tls_stream]") {
    Fixture f;
    Client c(f.verified("meet.example.com"));
    auto s = TlsStream::accept(f.store);
    REQUIRE(s);
    CHECK(s->state() == TlsState::Handshaking);
    CHECK_FALSE(s->handshake_done());
    std::string dummy;
    CHECK_FALSE(s->write("too early", dummy));
    CHECK(dummy.empty());

    auto r = handshake(c, *s);
    REQUIRE(r.client_done);
    REQUIRE(r.server == TlsState::Open);
    CHECK(s->handshake_done());
    CHECK(c.verify_result() == X509_V_OK);
    CHECK(s->sni() == "meet.example.com");
    CHECK(s->version() == "TLSv1.3");
    CHECK_FALSE(s->cipher().empty());
    CHECK(s->alpn().empty());
    CHECK(s->certificate() == 0);
    CHECK_FALSE(s->resumed());
    CHECK(s->failure() == TlsFailure::None);
    CHECK(to_string(s->failure()) == "ok");
    CHECK(SSL_get_current_compression(s->native()) == nullptr);

    std::string header = "<?xml version='1.0'?><stream:stream to='meet.example.com' version='1.0' "
                         "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    CHECK(to_server(c, *s, header) == header);
    CHECK(to_client(*s, c, "<stream:stream from='meet.example.com'>") ==
          "<stream:stream from='meet.example.com'>");
}

TEST_CASE("tls stream: SNI picks the certificate; without SNI the stream's `to` does", "[tls_stream]") {
    Fixture f;
    SECTION("SNI of the second certificate") {
        Client c(f.verified("auth.example.com"));
        auto s = TlsStream::accept(f.store);
        REQUIRE(handshake(c, *s).client_done);
        CHECK(c.verify_result() == X509_V_OK);
        CHECK(s->certificate() == 1);
    }
    SECTION("SNI under a wildcard, any case") {
        ClientOptions o = f.verified("guest.meet.example.com");
        o.sni = "Guest.Meet.Example.com";
        Client c(o);
        auto s = TlsStream::accept(f.store);
        REQUIRE(handshake(c, *s).client_done);
        CHECK(c.verify_result() == X509_V_OK);
        CHECK(s->certificate() == 0);
        CHECK(s->sni() == "Guest.Meet.Example.com");
    }
    SECTION("STARTTLS without SNI: chosen by the stream's to") {
        Client c(f.verified("auth.example.com", false));
        auto s = TlsStream::accept(f.store, "auth.example.com");
        REQUIRE(handshake(c, *s).client_done);
        CHECK(c.verify_result() == X509_V_OK);
        CHECK(s->certificate() == 1);
        CHECK(s->sni().empty());
    }
    SECTION("Direct TLS without SNI: the default certificate") {
        Client c(f.verified("meet.example.com", false));
        auto s = TlsStream::accept(f.store);
        REQUIRE(handshake(c, *s).client_done);
        CHECK(s->certificate() == 0);
    }
    SECTION("an unknown `to` falls back to the default certificate") {
        Client c(f.verified("meet.example.com", false));
        auto s = TlsStream::accept(f.store, "nowhere.example");
        REQUIRE(handshake(c, *s).client_done);
        CHECK(s->certificate() == 0);
    }
}

TEST_CASE("tls stream: an unknown SNI is refused with unrecognized_name", "[tls_stream]") {
    Fixture f;
    Client c(f.verified("nowhere.example"));
    auto s = TlsStream::accept(f.store);
    auto r = handshake(c, *s);
    CHECK_FALSE(r.client_done);
    CHECK(r.server == TlsState::Failed);
    CHECK(s->failure() == TlsFailure::UnknownSni);
    CHECK(to_string(s->failure()) == "unknown-sni");
    CHECK(s->error().find("unrecognized name") != std::string::npos);
    CHECK(r.client_error == SSL_ERROR_SSL);
    // Input after a failure is ignored.
    std::string plain, out;
    CHECK(s->feed("more", plain, out) == TlsState::Failed);
    CHECK(out.empty());

    SECTION("unless strict_sni is off: then the handshake goes on with the default") {
        StoreOptions o;
        o.strict_sni = false;
        auto a = f.pki.issue("lenient", {"meet.example.com"});
        auto built = CertStore::build({{a.cert, a.key, {"meet.example.com"}}}, o);
        auto lenient = std::get<std::shared_ptr<const CertStore>>(built);
        ClientOptions co;
        co.sni = "nowhere.example";
        Client c2(co);
        auto s2 = TlsStream::accept(lenient);
        REQUIRE(handshake(c2, *s2).client_done);
        CHECK(s2->certificate() == 0);
    }
}

TEST_CASE("tls stream: any split of the client's bytes, large transfers both ways", "[tls_stream]") {
    Fixture f;
    for (unsigned seed = 1; seed <= 8; ++seed) {
        INFO("seed " << seed);
        Client c(f.verified("meet.example.com"));
        auto s = TlsStream::accept(f.store);
        auto r = handshake(c, *s, seed == 1 ? 1 : 37 * seed, seed);
        REQUIRE(r.client_done);
        REQUIRE(r.server == TlsState::Open);
        std::string up = random_bytes(300'000 + seed, seed);
        CHECK(to_server(c, *s, up, 1 + 500 * seed, seed) == up);
        std::string down = random_bytes(200'000, seed + 100);
        CHECK(to_client(*s, c, down) == down);
    }
}

TEST_CASE("tls stream: application data in the same flight as the client's Finished", "[tls_stream]") {
    Fixture f;
    Client c(f.verified("meet.example.com"));
    auto s = TlsStream::accept(f.store);
    // Client: ClientHello -> server flight -> Finished, and the stream header written at once.
    REQUIRE(c.step() == SSL_ERROR_WANT_READ);
    std::string plain, out;
    s->feed(c.take_output(), plain, out);
    c.give_input(out);
    REQUIRE(c.step() == 0);
    c.write("<stream:stream to='meet.example.com'>");
    out.clear();
    CHECK(s->feed(c.take_output(), plain, out) == TlsState::Open);  // Finished + data, one call
    CHECK(plain == "<stream:stream to='meet.example.com'>");
    CHECK_FALSE(out.empty());  // the session ticket
}

TEST_CASE("tls stream: close_notify both ways", "[tls_stream]") {
    Fixture f;
    SECTION("the client closes") {
        Client c(f.verified("meet.example.com"));
        auto s = TlsStream::accept(f.store);
        REQUIRE(handshake(c, *s).client_done);
        c.write("last words");
        SSL_shutdown(c.ssl());
        std::string plain, out;
        CHECK(s->feed(c.take_output(), plain, out) == TlsState::Closed);
        CHECK(plain == "last words");
        CHECK_FALSE(s->write("too late", out));
        s->close(out);  // our close_notify
        c.give_input(out);
        c.read_all();
        CHECK(c.peer_closed());
    }
    SECTION("the proxy closes") {
        Client c(f.verified("meet.example.com"));
        auto s = TlsStream::accept(f.store);
        REQUIRE(handshake(c, *s).client_done);
        std::string out;
        REQUIRE(s->write("bye", out));
        s->close(out);
        CHECK(s->state() == TlsState::Closed);
        c.give_input(out);
        CHECK(c.read_all() == "bye");
        CHECK(c.peer_closed());
    }
    SECTION("closing before the handshake sends nothing") {
        auto s = TlsStream::accept(f.store);
        std::string out;
        s->close(out);
        CHECK(out.empty());
        CHECK(s->state() == TlsState::Closed);
    }
}

TEST_CASE("tls stream: garbage instead of a ClientHello", "[tls_stream]") {
    Fixture f;
    auto s = TlsStream::accept(f.store);
    std::string plain, out;
    CHECK(s->feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n", plain, out) == TlsState::Failed);
    CHECK(s->failure() == TlsFailure::Protocol);
    CHECK_FALSE(s->error().empty());
    CHECK(plain.empty());
}

TEST_CASE("tls stream: a client that rejects the certificate", "[tls_stream]") {
    Fixture f;
    ClientOptions o;
    o.ca_file = f.pki.ca_file();
    o.sni = "meet.example.com";
    o.verify_host = "other.example.org";  // the certificate does not name it
    Client c(o);
    auto s = TlsStream::accept(f.store);
    auto r = handshake(c, *s);
    CHECK_FALSE(r.client_done);
    CHECK(s->state() == TlsState::Failed);
    CHECK(s->failure() == TlsFailure::PeerAlert);
    CHECK(s->error().find("client sent alert") != std::string::npos);
}

TEST_CASE("tls stream: session tickets resume (TLS 1.3 and 1.2)", "[tls_stream]") {
    Fixture f;
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        INFO("version " << version);
        ClientOptions o = f.verified("meet.example.com");
        o.max_version = version;
        SSL_SESSION* session = nullptr;
        {
            Client c(o);
            auto s = TlsStream::accept(f.store);
            REQUIRE(handshake(c, *s).client_done);
            c.read_all();  // takes in the NewSessionTicket (TLS 1.3 sends it after the handshake)
            session = c.session();
            REQUIRE(session);
            CHECK(SSL_SESSION_is_resumable(session) == 1);
            SSL_shutdown(c.ssl());  // OpenSSL forgets sessions of connections not closed cleanly
        }
        o.session = session;
        Client c(o);
        auto s = TlsStream::accept(f.store);
        REQUIRE(handshake(c, *s).client_done);
        CHECK(s->resumed());
        CHECK(SSL_session_reused(c.ssl()) == 1);
        SSL_SESSION_free(session);
    }
}

TEST_CASE("tls stream: it keeps its store alive across a reload", "[tls_stream]") {
    Fixture f;
    std::weak_ptr<const CertStore> weak = f.store;
    auto s = TlsStream::accept(f.store);
    f.store.reset();  // the daemon swapped in a new store
    CHECK_FALSE(weak.expired());
    Client c(f.verified("auth.example.com"));
    auto r = handshake(c, *s);  // the servername callback still finds its store
    REQUIRE(r.client_done);
    CHECK(s->certificate() == 1);
    s.reset();
    CHECK(weak.expired());
}
