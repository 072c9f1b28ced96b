#include <catch2/catch.hpp>

#include "core/sasl.hpp"

using namespace xs::loadgen::sasl;

namespace {
std::string hex(const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string o;
    for (unsigned char c : s) {
        o += d[c >> 4];
        o += d[c & 15];
    }
    return o;
}
}  // namespace

TEST_CASE("SCRAM-SHA-1 reproduces the RFC 5802 section 5 example", "[sasl][scram]") {
    ScramSha1Client c("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
    CHECK(c.client_first() == "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    std::string err;
    auto final_msg = c.client_final(
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096", &err);
    REQUIRE(final_msg);
    CHECK(*final_msg ==
          "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    CHECK(c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="));
    CHECK_FALSE(c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQX"));
    CHECK_FALSE(c.verify_server_final("e=invalid-proof"));
}

TEST_CASE("SCRAM salted passwords are cached per password, salt and iterations", "[sasl][scram]") {
    SaltedPasswordCache cache;
    for (int i = 0; i < 3; ++i) {
        ScramSha1Client c("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL", &cache);
        auto f = c.client_final("r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,i=4096", nullptr);
        REQUIRE(f);
    }
    CHECK(cache.computed() == 1);
    ScramSha1Client other("user", "pencil", "abc", &cache);
    REQUIRE(other.client_final("r=abcdef,s=QSXCR+Q6sek8bf92,i=4097", nullptr));
    CHECK(cache.computed() == 2);
}

TEST_CASE("SCRAM rejects a malformed or hostile server-first-message", "[sasl][scram]") {
    auto bad = [](const char* server_first) {
        ScramSha1Client c("user", "pencil", "nonce");
        std::string err;
        bool ok = c.client_final(server_first, &err).has_value();
        INFO(server_first << " -> " << err);
        CHECK_FALSE(ok);
        CHECK_FALSE(err.empty());
        CHECK_FALSE(c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="));
    };
    bad("r=othernonce123,s=QSXCR+Q6sek8bf92,i=4096");   // does not extend ours
    bad("r=nonce,s=QSXCR+Q6sek8bf92,i=4096");           // not extended at all
    bad("r=nonce123,i=4096");                           // no salt
    bad("r=nonce123,s=QSXCR+Q6sek8bf92");               // no iterations
    bad("r=nonce123,s=!!!,i=4096");                     // salt not base64
    bad("r=nonce123,s=QSXCR+Q6sek8bf92,i=0");
    bad("r=nonce123,s=QSXCR+Q6sek8bf92,i=12x");
    bad("r=nonce123,s=QSXCR+Q6sek8bf92,i=99999999");    // absurd work factor
    bad("m=ext,r=nonce123,s=QSXCR+Q6sek8bf92,i=4096");  // mandatory extension
}

TEST_CASE("SCRAM escapes ',' and '=' in the user name", "[sasl][scram]") {
    CHECK(scram_escape_user("a,b=c") == "a=2Cb=3Dc");
    ScramSha1Client c("a,b=c", "p", "n0");
    CHECK(c.client_first() == "n,,n=a=2Cb=3Dc,r=n0");
}

TEST_CASE("PBKDF2-HMAC-SHA1 matches RFC 6070", "[sasl]") {
    CHECK(hex(pbkdf2_sha1("password", "salt", 1)) == "0c60c80f961f0e71f3a9b524af6012062fe037a6");
    CHECK(hex(pbkdf2_sha1("password", "salt", 2)) == "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    CHECK(hex(pbkdf2_sha1("password", "salt", 4096)) == "4b007901b765489abead49d926f721d065a429c1");
}

TEST_CASE("base64 round trips and follows RFC 4648 vectors", "[sasl][base64]") {
    const char* vec[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                            {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                            {"foobar", "Zm9vYmFy"}};
    for (auto& v : vec) {
        CHECK(base64_encode(v[0]) == v[1]);
        auto d = base64_decode(v[1]);
        REQUIRE(d);
        CHECK(*d == v[0]);
    }
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    CHECK(base64_decode(base64_encode(all)) == all);
    CHECK(base64_decode("Zm9v\nYmFy") == std::string("foobar"));
    CHECK_FALSE(base64_decode("Zm9"));
    CHECK_FALSE(base64_decode("Zm=v"));
    CHECK_FALSE(base64_decode("Zh=="));  // non-zero trailing bits
    CHECK_FALSE(base64_decode("Z$9v"));
}

TEST_CASE("PLAIN message and nonces", "[sasl]") {
    CHECK(plain_message("alice", "pw") == std::string("\0alice\0pw", 9));
    CHECK(base64_encode(plain_message("alice", "pw")) == "AGFsaWNlAHB3");
    auto a = make_nonce(), b = make_nonce();
    CHECK(a.size() == 24);
    CHECK(a != b);
    CHECK(a.find(',') == std::string::npos);
}
