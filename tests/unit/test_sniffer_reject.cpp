// Inputs the sniffer must refuse, with the right verdict, as early as it is certain, under
// every split of the input.
#include <catch2/catch.hpp>

#include "sniffer_support.hpp"

using namespace xs::routing;
using xs::test::Outcome;
using xs::test::sniff_every_split;

namespace {

const std::string kOpen = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' ";
using C = StreamCondition;

struct Bad {
    std::string input;
    SniffStatus status;
    C condition;
    std::size_t at;  // bytes_seen() at the verdict; 0: the whole input
};

Bad reject(std::string input, C c, std::size_t at = 0) {
    return {std::move(input), SniffStatus::Reject, c, at};
}

void check_all(const std::vector<Bad>& cases) {
    for (const Bad& b : cases) {
        Outcome o = sniff_every_split(b.input);
        INFO("input: " << b.input);
        INFO(o);
        REQUIRE(o.status == b.status);
        if (b.status == SniffStatus::Reject) {
            CHECK(o.condition == b.condition);
            CHECK_FALSE(o.detail.empty());
        }
        CHECK(o.seen == (b.at ? b.at : b.input.size()));
    }
}

}  // namespace

TEST_CASE("sniffer: a TLS ClientHello is recognised by its first byte", "[sniffer]") {
    check_all({{std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                SniffStatus::TlsClientHello, C::NotWellFormed, 1},
               {std::string("\x16", 1), SniffStatus::TlsClientHello, C::NotWellFormed, 1}});
    // Only as the very first byte.
    check_all({reject(std::string(" \x16", 2), C::NotWellFormed)});
}

TEST_CASE("sniffer: bytes that cannot start XML are not-well-formed at once", "[sniffer]") {
    check_all({
        reject("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", C::NotWellFormed, 1),
        reject("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", C::NotWellFormed, 1),
        reject(std::string("\0<", 2), C::NotWellFormed, 1),
        reject("\x80", C::NotWellFormed, 1),
        reject("\xC3\xA9", C::NotWellFormed, 1),
        reject("  hello", C::NotWellFormed, 3),
        reject("\xEF\xBB<stream", C::NotWellFormed, 3),      // broken BOM
        reject("\xEF\xBB\xBF\xEF\xBB\xBF<", C::NotWellFormed, 4),  // two BOMs
        reject("</stream:stream>", C::NotWellFormed, 2),
        reject("< stream:stream>", C::NotWellFormed, 2),
        reject("<1stream>", C::NotWellFormed, 2),
        reject("<>", C::NotWellFormed, 2),
    });
}

TEST_CASE("sniffer: UTF-16 and non-UTF-8 declarations are unsupported-encoding", "[sniffer]") {
    check_all({
        reject(std::string("\xFE\xFF\0<", 4), C::UnsupportedEncoding, 2),
        reject(std::string("\xFF\xFE<\0", 4), C::UnsupportedEncoding, 2),
        reject("\xFE<", C::NotWellFormed, 2),
        reject("<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>",
               C::UnsupportedEncoding, 41),
        reject("<?xml version='1.0' encoding=\"UTF-16\"?>", C::UnsupportedEncoding, 37),
        reject("<?xml version='1.0' encoding='utf8'?>", C::UnsupportedEncoding, 35),
    });
}

TEST_CASE("sniffer: a malformed XML declaration is not-well-formed", "[sniffer]") {
    check_all({
        reject("<?xml?>", C::NotWellFormed, 6),
        reject("<?xml ?>", C::NotWellFormed, 7),
        reject("<?xml version='2.0'?>", C::NotWellFormed, 19),
        reject("<?xml version='1.'?>", C::NotWellFormed, 18),
        reject("<?xml version=1.0?>", C::NotWellFormed, 15),
        reject("<?xml encoding='UTF-8' version='1.0'?>", C::NotWellFormed, 15),
        reject("<?xml version='1.0' standalone='yes' encoding='UTF-8'?>", C::NotWellFormed, 46),
        reject("<?xml version='1.0' standalone='maybe'?>", C::NotWellFormed, 38),
        reject("<?xml version='1.0' foo='bar'?>", C::NotWellFormed, 24),
        reject("<?xml version='1.0'encoding='UTF-8'?>", C::NotWellFormed, 20),
        reject("<?xml version='1.0' encoding='8bit'?>", C::NotWellFormed, 35),
        reject("<?xml version='1.0'>", C::NotWellFormed, 20),
        reject("<?xml version='1.0'? >", C::NotWellFormed, 21),
        reject("<?xml version='1.0' version='1.0'?>", C::NotWellFormed, 28),
        reject("<?xml\tversion='1.0\xC3\xA9'?>", C::NotWellFormed, 19),
    });
}

TEST_CASE("sniffer: DOCTYPE, entities, comments and PIs are restricted-xml at once",
          "[sniffer]") {
    check_all({
        reject("<!DOCTYPE stream [<!ENTITY x 'y'>]>", C::RestrictedXml, 2),
        reject("<?xml version='1.0'?><!DOCTYPE stream>", C::RestrictedXml, 23),
        reject("<?xml version='1.0'?>\n<!ENTITY lol 'lol'>", C::RestrictedXml, 24),
        reject("<!-- hello --><stream:stream>", C::RestrictedXml, 2),
        reject("<![CDATA[x]]>", C::RestrictedXml, 2),
        reject("<?php echo 1; ?>", C::RestrictedXml, 3),
        reject("<?xml-stylesheet href='a.xsl'?>", C::RestrictedXml, 6),
        reject("<?xm?>", C::RestrictedXml, 5),
        reject("<?XML version='1.0'?>", C::RestrictedXml, 3),
        reject("<?xm\xC3\xA9 a?>", C::RestrictedXml, 5),
        reject("<?xml\xC3\xA9 a?>", C::RestrictedXml, 6),
        reject(" <?xml version='1.0'?>", C::RestrictedXml, 3),      // not at the very start
        reject("<?xml version='1.0'?><?xml version='1.0'?>", C::RestrictedXml, 23),
        reject("<?xml version='1.0'?><?pi?><stream:stream>", C::RestrictedXml, 23),
    });
}

TEST_CASE("sniffer: wrong root name or namespace is invalid-namespace", "[sniffer]") {
    check_all({
        reject("<html>", C::InvalidNamespace, 6),
        reject("<stream:features>", C::InvalidNamespace, 17),
        reject("<stream:streams xmlns:stream='http://etherx.jabber.org/streams'>",
               C::InvalidNamespace, 16),
        reject("<stream:stream xmlns:stream='jabber:client'>", C::InvalidNamespace),
        reject("<stream:stream xmlns:stream='http://etherx.jabber.org/streams/'>",
               C::InvalidNamespace),
        reject("<stream xmlns='jabber:client' to='example.com'>", C::InvalidNamespace),
        reject("<stream to='example.com'>", C::InvalidNamespace),
        reject("<stream>", C::InvalidNamespace),
        reject("<xml:stream>", C::InvalidNamespace),
    });
}

TEST_CASE("sniffer: namespace well-formedness errors are not-well-formed", "[sniffer]") {
    check_all({
        reject("<stream:stream xmlns='jabber:client' to='example.com'>", C::NotWellFormed),
        reject(kOpen + "foo:bar='x'>", C::NotWellFormed),
        reject(kOpen + "xmlns:xmlns='urn:x'>", C::NotWellFormed),
        reject(kOpen + "xmlns:a=''>", C::NotWellFormed),
        reject(kOpen + "xmlns:xml='urn:x'>", C::NotWellFormed),
        reject(kOpen + "xmlns:a='http://www.w3.org/XML/1998/namespace'>", C::NotWellFormed),
        reject(kOpen + "xmlns='http://www.w3.org/2000/xmlns/'>", C::NotWellFormed),
        reject(kOpen + "xmlns:a='urn:x' xmlns:b='urn:x' a:z='1' b:z='2'>", C::NotWellFormed),
        reject("<xmlns:stream xmlns:xmlns='http://etherx.jabber.org/streams'>", C::NotWellFormed,
               14),
        reject("<stream:stream:x>", C::NotWellFormed, 17),
        reject("<:stream>", C::NotWellFormed, 9),
        reject(kOpen + ":to='x'>", C::NotWellFormed, 67),  // names are checked when they end
        reject(kOpen + "a:='x'>", C::NotWellFormed, 66),
    });
}

TEST_CASE("sniffer: attribute syntax errors are not-well-formed", "[sniffer]") {
    const std::size_t k = kOpen.size();
    check_all({
        reject(kOpen + "to='a' to='b'>", C::NotWellFormed, k + 10),
        reject(kOpen + "to=\"a\" xmlns:stream='x'>", C::NotWellFormed, k + 20),
        reject(kOpen + "to='a<b'>", C::NotWellFormed, k + 6),
        reject(kOpen + "to='a'from='b'>", C::NotWellFormed, k + 7),
        reject(kOpen + "to>", C::NotWellFormed, k + 3),
        reject(kOpen + "to=example.com>", C::NotWellFormed, k + 4),
        reject(kOpen + "'x'>", C::NotWellFormed, k + 1),
        reject(kOpen + "/ >", C::NotWellFormed, k + 2),
        reject(kOpen + "to='a' =>", C::NotWellFormed, k + 8),
        reject(kOpen + "-to='a'>", C::NotWellFormed, k + 1),
        reject(kOpen + "t\xC3\x97o='a'>", C::NotWellFormed, k + 3),  // U+00D7 is no name char
        reject("<\xC3\x97stream>", C::NotWellFormed, 3),                 // nor a name start
    });
}

TEST_CASE("sniffer: bad references are not-well-formed", "[sniffer]") {
    const std::size_t k = kOpen.size();
    check_all({
        reject(kOpen + "to='&foo;'>", C::NotWellFormed, k + 9),
        reject(kOpen + "to='&nbsp;'>", C::NotWellFormed, k + 10),
        reject(kOpen + "to='&amp'>", C::NotWellFormed, k + 9),
        reject(kOpen + "to='& amp;'>", C::NotWellFormed, k + 6),
        reject(kOpen + "to='&;'>", C::NotWellFormed, k + 6),
        reject(kOpen + "to='&#;'>", C::NotWellFormed, k + 7),
        reject(kOpen + "to='&#x;'>", C::NotWellFormed, k + 8),
        reject(kOpen + "to='&#0;'>", C::NotWellFormed, k + 8),
        reject(kOpen + "to='&#1;'>", C::NotWellFormed, k + 8),
        reject(kOpen + "to='&#xD800;'>", C::NotWellFormed, k + 12),
        reject(kOpen + "to='&#xFFFE;'>", C::NotWellFormed, k + 12),
        reject(kOpen + "to='&#x110000;'>", C::NotWellFormed, k + 14),
        reject(kOpen + "to='&#99999999999999999999;'>", C::NotWellFormed, k + 27),
        reject(kOpen + "to='&#X41;'>", C::NotWellFormed, k + 10),
        reject(kOpen + "to='&#12a;'>", C::NotWellFormed, k + 10),
        reject(kOpen + "to='&" + std::string(40, 'a') + ";'>", C::NotWellFormed, k + 38),
    });
}

TEST_CASE("sniffer: invalid UTF-8 and control characters are not-well-formed", "[sniffer]") {
    const std::size_t k = kOpen.size();
    check_all({
        reject(kOpen + "to='\xC3('>", C::NotWellFormed, k + 6),
        reject(kOpen + "to='\xC0\xAF'>", C::NotWellFormed, k + 5),          // overlong lead
        reject(kOpen + "to='\xE0\x80\xAF'>", C::NotWellFormed, k + 7),      // overlong
        reject(kOpen + "to='\xED\xA0\x80'>", C::NotWellFormed, k + 7),      // surrogate
        reject(kOpen + "to='\xF4\x90\x80\x80'>", C::NotWellFormed, k + 8),  // > U+10FFFF
        reject(kOpen + "to='\xF5\x80'>", C::NotWellFormed, k + 5),
        reject(kOpen + "to='\xEF\xBF\xBE'>", C::NotWellFormed, k + 7),      // U+FFFE
        reject(kOpen + "to='\xE2\x82'>", C::NotWellFormed, k + 7),          // truncated
        reject(kOpen + "to='\x80'>", C::NotWellFormed, k + 5),
        reject(kOpen + "to='a\x01" "b'>", C::NotWellFormed, k + 6),
        reject(kOpen + std::string("to='a\0b'>", 9), C::NotWellFormed, k + 6),
        reject(kOpen + "to='a\x1b'>", C::NotWellFormed, k + 6),
        reject(kOpen + "\x01", C::NotWellFormed, k + 1),
    });
}

TEST_CASE("sniffer: a self-closing root is invalid-xml", "[sniffer]") {
    check_all({
        reject(kOpen + "to='example.com'/>", C::InvalidXml),
        reject("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", C::InvalidXml),
        reject("<stream xmlns='http://etherx.jabber.org/streams' />", C::InvalidXml),
    });
    // Namespace problems are reported before emptiness.
    check_all({reject("<stream:stream/>", C::NotWellFormed),
               reject("<stream xmlns='jabber:client'/>", C::InvalidNamespace)});
    Outcome o = xs::test::sniff(kOpen + "/>");
    CHECK(o.detail.find("self-closing") != std::string::npos);
}
