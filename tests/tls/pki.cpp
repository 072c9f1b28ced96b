#include "pki.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>

namespace xs::tls::test {

namespace {

EVP_PKEY* new_key(bool rsa) {
    EVP_PKEY* k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    REQUIRE(k);
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    REQUIRE(ext);
    REQUIRE(X509_add_ext(cert, ext, -1) == 1);
    X509_EXTENSION_free(ext);
}

// Unsigned; the issuer name is `issuer`'s subject, or its own (self-signed) without one.
X509* new_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, long from, long to) {
    X509* x = X509_new();
    REQUIRE(x);
    X509_set_version(x, 2);
    unsigned char serial[8];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7F;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("xmpp-shard tests"), -1, -1, 0);
    if (!cn.empty())
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    return x;
}

void write_pem(const std::string& path, X509* leaf, X509* chain, EVP_PKEY* key, bool encrypt) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    if (leaf) REQUIRE(PEM_write_X509(f, leaf) == 1);
    if (chain) REQUIRE(PEM_write_X509(f, chain) == 1);
    if (key) {
        const char* pass = "secret";
        REQUIRE(PEM_write_PrivateKey(f, key, encrypt ? EVP_aes_256_cbc() : nullptr,
                                     encrypt ? reinterpret_cast<const unsigned char*>(pass) : nullptr,
                                     encrypt ? 6 : 0, nullptr, nullptr) == 1);
    }
    std::fclose(f);
}

}  // namespace

Pki::Pki() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "xs-tls-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()));
    dir_ = tmpl;
    ca_key_ = new_key(false);
    ca_ = new_cert(ca_key_, "xmpp-shard test CA", nullptr, -3600, 365L * 86400);
    add_ext(ca_, ca_, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca_, ca_, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca_, ca_, NID_subject_key_identifier, "hash");
    REQUIRE(X509_sign(ca_, ca_key_, EVP_sha256()) > 0);
    ca_file_ = (dir_ / "ca.crt").string();
    write_pem(ca_file_, ca_, nullptr, nullptr, false);
}

Pki::~Pki() {
    X509_free(ca_);
    EVP_PKEY_free(ca_key_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

Issued Pki::issue(const std::string& name, const LeafOptions& o) {
    EVP_PKEY* key = new_key(o.rsa);
    std::string cn = o.cn.empty() && !o.dns.empty() ? o.dns.front() : o.cn;
    X509* x = new_cert(key, cn, ca_, o.valid_from, o.valid_to);
    add_ext(x, ca_, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, ca_, NID_ext_key_usage, "serverAuth");
    add_ext(x, ca_, NID_authority_key_identifier, "keyid:always");
    if (!o.dns.empty()) {
        std::string san;
        for (const auto& d : o.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
        add_ext(x, ca_, NID_subject_alt_name, san);
    }
    REQUIRE(X509_sign(x, ca_key_, EVP_sha256()) > 0);
    Issued out{(dir_ / (name + ".crt")).string(), (dir_ / (name + ".key")).string()};
    write_pem(out.cert, x, o.with_chain ? ca_ : nullptr, nullptr, false);
    write_pem(out.key, nullptr, nullptr, key, o.encrypt_key);
    X509_free(x);
    EVP_PKEY_free(key);
    return out;
}

std::string Pki::write(const std::string& name, const std::string& content) {
    std::string path = (dir_ / name).string();
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
    return path;
}

}  // namespace xs::tls::test
