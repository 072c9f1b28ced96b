// CertStore: loading, validation errors (each located by certificate, field and item), domain
// selection, and rebuilds.
#include <catch2/catch.hpp>
#include <ctime>
#include <variant>

#include "pki.hpp"
#include "tls/tls_context.hpp"

using namespace xs::tls;
using namespace xs::tls::test;

namespace {

std::shared_ptr<const CertStore> must_build(const std::vector<CertificateSpec>& specs,
                                            const StoreOptions& o = {}) {
    auto r = CertStore::build(specs, o);
    if (auto* errs = std::get_if<std::vector<CertError>>(&r)) {
        for (const auto& e : *errs) UNSCOPED_INFO(e.certificate << "/" << static_cast<int>(e.field) << "/" << e.item << ": " << e.message);
        FAIL("build failed");
    }
    return std::get<std::shared_ptr<const CertStore>>(r);
}

std::vector<CertError> must_fail(const std::vector<CertificateSpec>& specs) {
    auto r = CertStore::build(specs);
    REQUIRE(std::holds_alternative<std::vector<CertError>>(r));
    auto errs = std::get<std::vector<CertError>>(r);
    for (const auto& e : errs) UNSCOPED_INFO(e.message);
    return errs;
}

CertificateSpec spec(const Issued& i, std::vector<std::string> domains) {
    return {i.cert, i.key, std::move(domains)};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cert store: loads certificates and picks them by domain", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"meet.example.com", "*.meet.example.com"});
    LeafOptions rsa;
    rsa.dns = {"auth.example.com"};
    rsa.rsa = true;
    auto b = pki.issue("b", rsa);
    auto c = pki.issue("c", {"x.meet.example.com"});
    auto store = must_build({spec(a, {"meet.example.com", "*.meet.example.com"}),
                             spec(b, {"Auth.Example.COM."}), spec(c, {"x.meet.example.com"})});
    REQUIRE(store->size() == 3);
    CHECK(store->find("meet.example.com") == store->default_context());
    CHECK(store->index_of("meet.example.com") == 0);
    CHECK(store->index_of("guest.meet.example.com") == 0);   // one more label
    CHECK(store->index_of("a.b.meet.example.com") == -1);    // a certificate wildcard covers one
    CHECK(store->index_of("auth.example.com") == 1);         // normalised at build
    CHECK(store->index_of("x.meet.example.com") == 2);       // exact beats the wildcard
    CHECK(store->index_of("example.com") == -1);
    CHECK(store->index_of("") == -1);
    CHECK(store->find("nowhere.example") == nullptr);
    CHECK(store->index_of(store->find("auth.example.com")) == 1);
    CHECK(store->index_of(static_cast<const SSL_CTX*>(nullptr)) == -1);

    const auto& info = store->info(0);
    CHECK(contains(info.subject, "CN=meet.example.com"));
    CHECK(info.names == std::vector<std::string>{"meet.example.com", "*.meet.example.com"});
    CHECK(info.domains == std::vector<std::string>{"meet.example.com", "*.meet.example.com"});
    std::time_t now = std::time(nullptr);
    CHECK(info.not_before <= now);
    CHECK(info.not_after > now + 29L * 86400);
    CHECK(info.not_after < now + 31L * 86400);
    CHECK(store->info(1).domains == std::vector<std::string>{"auth.example.com"});
}

TEST_CASE("cert store: the policy of every context", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example"});
    auto store = must_build({spec(a, {"a.example"})});
    SSL_CTX* ctx = store->default_context();
    CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_2_VERSION);
    CHECK(SSL_CTX_get_max_proto_version(ctx) == TLS1_3_VERSION);
    uint64_t opts = SSL_CTX_get_options(ctx);
    CHECK((opts & SSL_OP_NO_COMPRESSION) != 0);
    CHECK((opts & SSL_OP_NO_RENEGOTIATION) != 0);
    CHECK((opts & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
    CHECK((opts & SSL_OP_NO_TICKET) == 0);
    CHECK((SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS) != 0);
    CHECK(SSL_CTX_get_num_tickets(ctx) == 1);
    // Only AEAD suites with forward secrecy for TLS 1.2.
    STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx);
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
        const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
        std::string name = SSL_CIPHER_get_name(c);
        INFO(name);
        CHECK(SSL_CIPHER_is_aead(c) == 1);
        bool tls13 = name.rfind("TLS_", 0) == 0;  // the TLS 1.3 suites
        CHECK((tls13 || name.rfind("ECDHE-", 0) == 0));
    }
}

TEST_CASE("cert store: unreadable files and bad PEM are located errors", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example"});
    SECTION("missing certificate file") {
        auto errs = must_fail({{pki.dir().string() + "/nope.crt", a.key, {"a.example"}}});
        REQUIRE(errs.size() == 1);
        CHECK(errs[0].certificate == 0);
        CHECK(errs[0].field == CertField::Cert);
        CHECK(contains(errs[0].message, "nope.crt"));
        CHECK(contains(errs[0].message, "No such file"));
    }
    SECTION("missing key file") {
        auto errs = must_fail({{a.cert, pki.dir().string() + "/nope.key", {"a.example"}}});
        REQUIRE(errs.size() == 1);
        CHECK(errs[0].field == CertField::Key);
        CHECK(contains(errs[0].message, "nope.key"));
    }
    SECTION("a directory is not a certificate file") {
        auto errs = must_fail({{pki.dir().string(), a.key, {"a.example"}}});
        REQUIRE(!errs.empty());
        CHECK(errs[0].field == CertField::Cert);
    }
    SECTION("garbage instead of PEM") {
        auto junk = pki.write("junk.pem", "this is not PEM\n");
        auto errs = must_fail({{junk, a.key, {"a.example"}}, {a.cert, junk, {"b.example"}}});
        REQUIRE(errs.size() >= 2);
        CHECK(errs[0].certificate == 0);
        CHECK(errs[0].field == CertField::Cert);
        CHECK(contains(errs[0].message, "no PEM certificate"));
        CHECK(errs[1].certificate == 1);
        CHECK(errs[1].field == CertField::Key);
        CHECK(contains(errs[1].message, "no PEM private key"));
    }
    SECTION("an encrypted key") {
        LeafOptions o;
        o.dns = {"e.example"};
        o.encrypt_key = true;
        auto e = pki.issue("e", o);
        auto errs = must_fail({spec(e, {"e.example"})});
        REQUIRE(errs.size() == 1);
        CHECK(errs[0].field == CertField::Key);
        CHECK(contains(errs[0].message, "encrypted"));
    }
}

TEST_CASE("cert store: a key that does not match its certificate", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example"});
    auto b = pki.issue("b", {"b.example"});
    auto errs = must_fail({spec(a, {"a.example"}), {b.cert, a.key, {"b.example"}}});
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].certificate == 1);
    CHECK(errs[0].field == CertField::Key);
    CHECK(contains(errs[0].message, "does not match"));
    CHECK(contains(errs[0].message, a.key));
}

TEST_CASE("cert store: domains must be valid, covered and unique", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example", "*.wild.example"});
    SECTION("not covered by the subjectAltName") {
        auto errs = must_fail({spec(a, {"a.example", "b.example", "x.y.wild.example"})});
        REQUIRE(errs.size() == 2);
        CHECK(errs[0].field == CertField::Domains);
        CHECK(errs[0].item == 1);
        CHECK(contains(errs[0].message, "b.example is not covered"));
        CHECK(contains(errs[0].message, "a.example, *.wild.example"));
        CHECK(errs[1].item == 2);
    }
    SECTION("a wildcard SAN covers names one label below it, and the wildcard itself") {
        auto store = must_build({spec(a, {"x.wild.example", "*.wild.example"})});
        CHECK(store->index_of("y.wild.example") == 0);
    }
    SECTION("a wildcard domain needs a wildcard SAN") {
        auto errs = must_fail({spec(a, {"*.a.example"})});
        REQUIRE(errs.size() == 1);
        CHECK(contains(errs[0].message, "*.a.example is not covered"));
    }
    SECTION("invalid names, \"*\" and empty lists") {
        auto errs = must_fail({spec(a, {"a..example", "*", "a.*.example"}), spec(a, {})});
        REQUIRE(errs.size() == 4);
        CHECK(errs[0].item == 0);
        CHECK(contains(errs[0].message, "invalid domain"));
        CHECK(errs[1].item == 1);
        CHECK(contains(errs[1].message, "\"*\" is not a certificate domain"));
        CHECK(errs[2].item == 2);
        CHECK(errs[3].certificate == 1);
        CHECK(errs[3].field == CertField::Domains);
        CHECK(contains(errs[3].message, "at least one domain"));
    }
    SECTION("a domain served twice") {
        auto b = pki.issue("b", {"a.example"});
        auto errs = must_fail({spec(a, {"a.example", "A.example"}), spec(b, {"a.example"})});
        REQUIRE(errs.size() == 2);
        CHECK(errs[0].certificate == 0);
        CHECK(errs[0].item == 1);
        CHECK(contains(errs[0].message, "listed twice"));
        CHECK(errs[1].certificate == 1);
        CHECK(contains(errs[1].message, "already served by certificate 1"));
    }
    SECTION("no certificate at all") {
        auto errs = must_fail({});
        REQUIRE(errs.size() == 1);
        CHECK(errs[0].field == CertField::Certificate);
    }
}

TEST_CASE("cert store: a certificate without SAN is matched on its CN", "[cert_store]") {
    Pki pki;
    LeafOptions o;
    o.cn = "cn-only.example";
    auto c = pki.issue("c", o);
    auto store = must_build({spec(c, {"cn-only.example"})});
    CHECK(store->info(0).names == std::vector<std::string>{"cn-only.example"});
}

TEST_CASE("cert store: every problem of a file is reported at once", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example"});
    auto b = pki.issue("b", {"b.example"});
    auto errs = must_fail({{pki.dir().string() + "/missing.crt", a.key, {"a.example"}},
                           {b.cert, a.key, {"b.example", "zzz.example"}},
                           {a.cert, pki.dir().string() + "/missing.key", {"*"}}});
    REQUIRE(errs.size() == 5);
    CHECK(errs[0].certificate == 0);
    CHECK(errs[1].certificate == 1);
    CHECK(errs[1].field == CertField::Key);
    CHECK(errs[2].certificate == 1);
    CHECK(errs[2].field == CertField::Domains);
    CHECK(errs[3].certificate == 2);
    CHECK(errs[3].field == CertField::Key);
    CHECK(errs[4].certificate == 2);
    CHECK(errs[4].field == CertField::Domains);
}

TEST_CASE("cert store: bad options are reported", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example"});
    StoreOptions o;
    o.tls12_ciphers = "NO-SUCH-CIPHER";
    auto r = CertStore::build({spec(a, {"a.example"})}, o);
    REQUIRE(std::holds_alternative<std::vector<CertError>>(r));
    CHECK(contains(std::get<std::vector<CertError>>(r)[0].message, "cipher list"));
    o = {};
    o.alpn = {""};
    r = CertStore::build({spec(a, {"a.example"})}, o);
    REQUIRE(std::holds_alternative<std::vector<CertError>>(r));
}

TEST_CASE("cert store: a rebuild is a new, independent store", "[cert_store]") {
    Pki pki;
    auto a = pki.issue("a", {"a.example"});
    auto b = pki.issue("b", {"b.example"});
    auto first = must_build({spec(a, {"a.example"})});
    auto second = must_build({spec(a, {"a.example"}), spec(b, {"b.example"})});
    CHECK(first->index_of("b.example") == -1);
    CHECK(second->index_of("b.example") == 1);
    CHECK(first->default_context() != second->default_context());
    // A broken reload changes nothing: the old store stays whole.
    auto bad = CertStore::build({{b.cert, a.key, {"b.example"}}});
    CHECK(std::holds_alternative<std::vector<CertError>>(bad));
    CHECK(first->index_of("a.example") == 0);
}
