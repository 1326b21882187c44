use super::*;
use crate::imps::csp::{self, Mode, Outgoing};
use crate::xml::{self, Rules};

const CSP13: &str = "http://www.openmobilealliance.org/DTD/IMPS-CSP1.3";
const TRC13: &str = "http://www.openmobilealliance.org/DTD/IMPS-TRC1.3";

/// A CSP 1.3 message around `primitive` (XML), as a client or the server writes it.
fn message(session: Option<&str>, mode: &str, primitive: &str) -> String {
    let sd = match session {
        Some(id) => format!("<SessionType>Inband</SessionType><SessionID>{id}</SessionID>"),
        None => "<SessionType>Outband</SessionType>".into(),
    };
    format!(
        "<WV-CSP-Message xmlns=\"{CSP13}\"><Session><SessionDescriptor>{sd}</SessionDescriptor>\
         <Transaction><TransactionDescriptor><TransactionMode>{mode}</TransactionMode>\
         <TransactionID>t1</TransactionID><Poll>F</Poll></TransactionDescriptor>\
         <TransactionContent xmlns=\"{TRC13}\">{primitive}</TransactionContent></Transaction>\
         </Session></WV-CSP-Message>"
    )
}

/// `doc` with the namespaces of CSP version `v` instead of 1.3's.
fn in_version(doc: &str, v: Version) -> String {
    let (csp, trc, pa) = match v {
        Version::V11 => (
            "http://www.wireless-village.org/CSP1.1",
            "http://www.wireless-village.org/TRC1.1",
            "http://www.wireless-village.org/PA1.1",
        ),
        Version::V12 => (
            "http://www.openmobilealliance.org/DTD/WV-CSP1.2",
            "http://www.openmobilealliance.org/DTD/WV-TRC1.2",
            "http://www.openmobilealliance.org/DTD/WV-PA1.2",
        ),
        Version::V13 => return doc.to_owned(),
    };
    doc.replace(CSP13, csp)
        .replace(TRC13, trc)
        .replace("http://www.openmobilealliance.org/DTD/IMPS-PA1.3", pa)
        .replace("AutoSubscribe", "Auto-Subscribe")
}

const USER: &str = "<User><UserID>wv:+4915112345678@sms.test</UserID></User>";

/// Every primitive the server reads (requests, and the client's answers).
fn requests() -> Vec<String> {
    [
        "<Login-Request><UserID>wv:alice@sms.test</UserID><ClientID><URL>test</URL></ClientID>\
         <Password>secret &amp; &lt;more&gt;</Password><TimeToLive>600</TimeToLive></Login-Request>",
        "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestSchema>MD5</DigestSchema></Login-Request>",
        "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestBytes>q83vEjRWeJA=</DigestBytes></Login-Request>",
        "<Polling-Request/>",
        "<KeepAlive-Request><TimeToLive>45</TimeToLive></KeepAlive-Request>",
        "<Logout-Request/>",
        "<ClientCapability-Request><ClientID><URL>x</URL></ClientID><CapabilityList>\
         <ClientType>MOBILE_PHONE</ClientType><InitialDeliveryMethod>P</InitialDeliveryMethod>\
         <AcceptedContentType>text/plain</AcceptedContentType><SupportedBearer>HTTP</SupportedBearer>\
         <SupportedCIRMethod>STCP</SupportedCIRMethod><MultiTrans>1</MultiTrans>\
         <ParserSize>32767</ParserSize></CapabilityList></ClientCapability-Request>",
        "<Service-Request><ClientID><URL>x</URL></ClientID><Functions><WVCSPFeat><IMFeat/>\
         </WVCSPFeat></Functions><AllFunctionsRequest>T</AllFunctionsRequest></Service-Request>",
        "<MessageDelivered><MessageID>m1</MessageID></MessageDelivered>",
        "<SendMessage-Request><DeliveryReport>T</DeliveryReport><MessageInfo>\
         <ContentType>text/plain</ContentType><ContentSize>11</ContentSize><Recipient>\
         <User><UserID>Bob</UserID></User></Recipient></MessageInfo>\
         <ContentData>Grüße, Bob ☺</ContentData></SendMessage-Request>",
        "<GetList-Request/>",
        "<CreateList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList>\
         <NickList><NickName><Name>Bob</Name><UserID>wv:+4915112345678@sms.test</UserID>\
         </NickName></NickList><ContactListProperties><Property><Name>DisplayName</Name>\
         <Value>Friends</Value></Property></ContactListProperties></CreateList-Request>",
        "<DeleteList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></DeleteList-Request>",
        "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><AddNickList>\
         <NickName><Name>Carol</Name><UserID>wv:+4915187654321@sms.test</UserID></NickName>\
         </AddNickList><RemoveNickList><UserID>wv:bob@sms.test</UserID></RemoveNickList>\
         <ReceiveList>T</ReceiveList></ListManage-Request>",
        "<BlockEntity-Request><BlockList><InUse>T</InUse><AddList><UserID>wv:x@sms.test</UserID>\
         </AddList></BlockList></BlockEntity-Request>",
        "<GetBlockedList-Request/>",
        "<GetPresence-Request><ContactList>wv:alice/~SMS@sms.test</ContactList></GetPresence-Request>",
        "<SubscribePresence-Request><User><UserID>wv:+4915112345678@sms.test</UserID></User>\
         <PresenceSubList xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-PA1.3\">\
         <OnlineStatus/><ClientInfo/><UserAvailability/><StatusText/></PresenceSubList>\
         <AutoSubscribe>T</AutoSubscribe></SubscribePresence-Request>",
        "<UnsubscribePresence-Request><ContactList>wv:alice/~Friends@sms.test</ContactList>\
         </UnsubscribePresence-Request>",
        "<UpdatePresence-Request><PresenceSubList \
         xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-PA1.3\"><UserAvailability>\
         <Qualifier>T</Qualifier><PresenceValue>DISCREET</PresenceValue></UserAvailability>\
         <StatusText><Qualifier>T</Qualifier><PresenceValue>at work</PresenceValue></StatusText>\
         </PresenceSubList></UpdatePresence-Request>",
        "<Status><Result><Code>200</Code></Result></Status>",
    ]
    .iter()
    .map(|p| message(Some("s1"), "Request", p))
    .collect()
}

/// Every primitive the server writes, in the shapes it writes them.
fn answers() -> Vec<String> {
    let result = "<Result><Code>200</Code><Description>done</Description></Result>";
    let presence = format!(
        "<Presence>{USER}<PresenceSubList xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-PA1.3\">\
         <OnlineStatus><Qualifier>T</Qualifier><PresenceValue>T</PresenceValue></OnlineStatus>\
         <ClientInfo><Qualifier>T</Qualifier><ClientType>CLI</ClientType>\
         <DevManufacturer>SMS</DevManufacturer></ClientInfo><CommCap><Qualifier>T</Qualifier>\
         <CommC><Cap>SMS</Cap><Status>OPEN</Status><Contact>+4915112345678</Contact></CommC>\
         </CommCap><UserAvailability><Qualifier>T</Qualifier><PresenceValue>AVAILABLE\
         </PresenceValue></UserAvailability><StatusText><Qualifier>T</Qualifier>\
         <PresenceValue>SMS-only</PresenceValue></StatusText></PresenceSubList></Presence>"
    );
    let answers = [
        format!(
            "<Login-Response><ClientID><URL>test</URL></ClientID>{result}<SessionID>tok1</SessionID>\
             <KeepAliveTime>600</KeepAliveTime><CapabilityRequest>T</CapabilityRequest></Login-Response>"
        ),
        "<Login-Response><Result><Code>401</Code><Description>Further authorization required\
         </Description></Result><Nonce>tok0</Nonce><DigestSchema>MD5</DigestSchema></Login-Response>"
            .into(),
        format!("<Status>{result}</Status>"),
        "<Status><Result><Code>604</Code><Description>invalid session</Description></Result></Status>"
            .into(),
        "<KeepAlive-Response><Result><Code>200</Code></Result><KeepAliveTime>45</KeepAliveTime>\
         </KeepAlive-Response>"
            .into(),
        "<ClientCapability-Response><ClientID><URL>x</URL></ClientID><AgreedCapabilityList>\
         <ClientType>MOBILE_PHONE</ClientType><InitialDeliveryMethod>P</InitialDeliveryMethod>\
         <AcceptedContentType>text/plain</AcceptedContentType>\
         <AcceptedTransferEncoding>None</AcceptedTransferEncoding>\
         <AcceptedContentLength>65536</AcceptedContentLength><MultiTrans>1</MultiTrans>\
         <ParserSize>65536</ParserSize><SupportedBearer>HTTP</SupportedBearer>\
         <ServerPollMin>5</ServerPollMin></AgreedCapabilityList></ClientCapability-Response>"
            .into(),
        "<Service-Response><Result><Code>200</Code></Result><AllFunctions><WVCSPFeat>\
         <FundamentalFeat><ServiceFunc/><InviteFunc/></FundamentalFeat><PresenceFeat>\
         <ContListFunc/><PresenceAuthFunc/><PresenceDeliverFunc/><AttListFunc/></PresenceFeat>\
         <IMFeat><IMSendFunc/><IMReceiveFunc/><IMAuthFunc/></IMFeat></WVCSPFeat></AllFunctions>\
         </Service-Response>"
            .into(),
        format!("<SendMessage-Response>{result}<MessageID>mtok3</MessageID></SendMessage-Response>"),
        format!(
            "<GetList-Response>{result}<DefaultContactList>wv:alice/~SMS@sms.test</DefaultContactList>\
             <ContactList>wv:alice/~SMS@sms.test</ContactList><ContactList>wv:alice/~Friends@sms.test\
             </ContactList></GetList-Response>"
        ),
        format!(
            "<ListManage-Response>{result}<NickList><NickName><Name>Bob</Name>\
             <UserID>wv:+4915112345678@sms.test</UserID></NickName></NickList>\
             <ContactListProperties><Property><Name>DisplayName</Name><Value>SMS</Value></Property>\
             <Property><Name>Default</Name><Value>T</Value></Property></ContactListProperties>\
             </ListManage-Response>"
        ),
        format!(
            "<GetBlockedList-Response><BlockList><InUse>T</InUse><EntityList>\
             <UserID>wv:x@sms.test</UserID></EntityList></BlockList><BlockListInUse>T\
             </BlockListInUse><GrantListInUse>F</GrantListInUse>{result}</GetBlockedList-Response>"
        ),
        format!("<GetPresence-Response>{result}{presence}</GetPresence-Response>"),
        format!("<PresenceNotification-Request>{presence}</PresenceNotification-Request>"),
        format!(
            "<NewMessage><MessageInfo><MessageID>mtok9</MessageID><ContentType>text/plain\
             </ContentType><ContentEncoding>None</ContentEncoding><ContentSize>5</ContentSize>\
             <Recipient>{USER}</Recipient><Sender><User><UserID>wv:+4915187654321@sms.test</UserID>\
             <ScreenName>Carol</ScreenName></User></Sender><DateTime>2026-05-01T12:00:07Z</DateTime>\
             </MessageInfo><ContentData>hello</ContentData></NewMessage>"
        ),
        "<DeliveryReport-Request><Result><Code>542</Code><Description>expired</Description>\
         </Result><MessageInfo><MessageID>mtok3</MessageID><Recipient><User>\
         <UserID>wv:+4915112345678@sms.test</UserID></User></Recipient></MessageInfo>\
         <DeliveryTime>2026-05-01T12:01:00Z</DeliveryTime></DeliveryReport-Request>"
            .into(),
    ];
    answers
        .iter()
        .map(|p| message(Some("tok1"), "Response", p))
        .collect()
}

fn read_xml(doc: &str) -> Element {
    xml::parse(doc.as_bytes(), &Rules::CSP).unwrap()
}

/// XML → tree → WBXML → tree gives the tree back; WBXML → tree → WBXML
/// gives the bytes back.
fn round_trip(doc: &str, version: Version) {
    let tree = read_xml(doc);
    let bytes = encode(&tree, version).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let back = decode(&bytes).unwrap_or_else(|e| panic!("{e}: {doc}"));
    assert_eq!(back.version, version);
    assert_eq!(back.root, tree, "{doc}");
    assert_eq!(encode(&back.root, version).unwrap(), bytes, "{doc}");
    // And the CSP reader sees the same message in both.
    assert_eq!(
        csp::from_root(back.root).unwrap(),
        csp::parse(doc.as_bytes()).unwrap()
    );
}

#[test]
fn every_request_and_answer_round_trips_in_csp_1_3() {
    for doc in requests().iter().chain(&answers()) {
        round_trip(doc, Version::V13);
    }
}

#[test]
fn the_envelope_the_server_builds_reads_back_as_its_xml_does() {
    let o = Outgoing {
        session_id: Some("s9".into()),
        transaction_id: Some("t9".into()),
        mode: Mode::Response,
        poll: true,
        primitive: csp::status(200, "ok"),
    };
    let bytes = encode(&csp::envelope(&o), Version::V13).unwrap();
    let from_xml = read_xml(std::str::from_utf8(&csp::encode(&o)).unwrap());
    assert_eq!(decode(&bytes).unwrap().root, from_xml);
}

/// The Login-Request of a CSP 1.3 client, token by token from the tables.
const LOGIN_REQUEST: &[u8] = &[
    0x03, 0x12, 0x6A, 0x00, // WBXML 1.3, -//OMA//DTD IMPS-CSP 1.3//EN, UTF-8, no strings
    0xC9, 0x0B, 0x03, b'1', b'.', b'3', 0x00, 0x01, // <WV-CSP-Message xmlns=IMPS-CSP + "1.3">
    0x6D, // <Session>
    0x6E, 0x70, 0x80, 0x19, 0x01, 0x01, // <SessionDescriptor><SessionType>Outband
    0x72, // <Transaction>
    0x74, 0x76, 0x80, 0x20, 0x01, // <TransactionDescriptor><TransactionMode>Request
    0x75, 0x03, b'1', 0x00, 0x01, 0x01, // <TransactionID>1
    0xF3, 0x0D, 0x03, b'1', b'.', b'3', 0x00, 0x01, // <TransactionContent xmlns=IMPS-TRC1.3>
    0x00, 0x01, 0x5D, // page 1 (Access), <Login-Request>
    0x00, 0x00, 0x7A, 0x03, b'w', b'v', b':', b'a', b'@', b'x', 0x00, 0x01, // <UserID>
    0x4A, 0x77, 0x03, b'c', 0x00, 0x01, 0x01, // <ClientID><URL>c
    0x00, 0x01, 0x61, 0x03, b'p', b'w', 0x00, 0x01, // page 1, <Password>pw
    0x72, 0xC3, 0x02, 0x02, 0x58, 0x01, // <TimeToLive> opaque integer 600
    0x01, 0x01, 0x01, 0x01, 0x01, // </Login-Request> … </WV-CSP-Message>
];

/// The server's answer to it, likewise.
const LOGIN_RESPONSE: &[u8] = &[
    0x03, 0x12, 0x6A, 0x00, //
    0xC9, 0x0B, 0x03, b'1', b'.', b'3', 0x00, 0x01, 0x6D, //
    0x6E, 0x70, 0x80, 0x19, 0x01, 0x01, // Outband
    0x72, 0x74, 0x76, 0x80, 0x21, 0x01, // <TransactionMode>Response
    0x75, 0x03, b'1', 0x00, 0x01, 0x01, //
    0xF3, 0x0D, 0x03, b'1', b'.', b'3', 0x00, 0x01, //
    0x00, 0x01, 0x5E, // <Login-Response>
    0x00, 0x00, 0x4A, 0x77, 0x03, b'c', 0x00, 0x01, 0x01, // <ClientID><URL>c
    0x6A, 0x4B, 0xC3, 0x01, 0xC8, 0x01, 0x01, // <Result><Code> opaque 200
    0x6F, 0x03, b's', b'1', 0x00, 0x01, // <SessionID>s1
    0x00, 0x01, 0x5C, 0xC3, 0x02, 0x02, 0x58, 0x01, // page 1, <KeepAliveTime> 600
    0x4B, 0x80, 0x2C, 0x01, // <CapabilityRequest>T
    0x01, 0x01, 0x01, 0x01, 0x01,
];

fn login_xml() -> String {
    message(
        None,
        "Request",
        "<Login-Request><UserID>wv:a@x</UserID><ClientID><URL>c</URL></ClientID>\
         <Password>pw</Password><TimeToLive>600</TimeToLive></Login-Request>",
    )
}

#[test]
fn login_request_and_response_have_the_known_bytes() {
    let strip = |doc: String| doc.replace("<Poll>F</Poll>", "").replace("t1", "1");
    let req = read_xml(&strip(login_xml()));
    assert_eq!(encode(&req, Version::V13).unwrap(), LOGIN_REQUEST);
    assert_eq!(decode(LOGIN_REQUEST).unwrap().root, req);
    let resp = read_xml(&strip(message(
        None,
        "Response",
        "<Login-Response><ClientID><URL>c</URL></ClientID><Result><Code>200</Code></Result>\
         <SessionID>s1</SessionID><KeepAliveTime>600</KeepAliveTime>\
         <CapabilityRequest>T</CapabilityRequest></Login-Response>",
    )));
    assert_eq!(encode(&resp, Version::V13).unwrap(), LOGIN_RESPONSE);
    assert_eq!(decode(LOGIN_RESPONSE).unwrap().root, resp);
}

/// The smallest documents of the AOSP IMPS engine's WBXML parser tests
/// (platform/packages/apps/IM, libwbxml/test/imps_parser_test.cpp): CSP 1.1,
/// a big entity, an entity past Unicode, a string without its NUL.
#[test]
fn reads_the_aosp_engine_vectors() {
    let simple3 = [
        0x03, 0x10, 0x6a, 0x00, 0xc9, 0x05, 0x03, 0x31, 0x2e, 0x31, 0x00, 0x01, 0x6d, 0x6e, 0x70,
        0x80, 0x19, 0x01, 0x01, 0x01, 0x01,
    ];
    let d = decode(&simple3).unwrap();
    assert_eq!(d.version, Version::V11);
    assert_eq!(
        d.root.ns.as_deref(),
        Some("http://www.wireless-village.org/CSP1.1")
    );
    assert_eq!(
        d.root
            .text_at(&["Session", "SessionDescriptor", "SessionType"]),
        Some("Outband")
    );
    let mut big = simple3[..15].to_vec();
    big.extend([0x02, 0xc3, 0xff, 0x7f, 0x01, 0x01, 0x01, 0x01]);
    let d = decode(&big).unwrap();
    assert_eq!(
        d.root
            .text_at(&["Session", "SessionDescriptor", "SessionType"]),
        Some("\u{10ffff}")
    );
    big[16..19].copy_from_slice(&[0xc4, 0x80, 0x00]);
    assert_eq!(decode(&big).unwrap_err().kind, ErrorKind::Entity(0x110000));
    let mut unterminated = simple3[..15].to_vec();
    unterminated.extend([0x03, 0x44, 0x55, 0x66, 0x01, 0x01, 0x01, 0x01]);
    assert_eq!(
        decode(&unterminated).unwrap_err().kind,
        ErrorKind::BadString
    );
}

#[test]
fn every_prefix_of_a_document_is_an_error_not_a_panic() {
    for n in 0..LOGIN_REQUEST.len() {
        assert!(decode(&LOGIN_REQUEST[..n]).is_err(), "prefix {n}");
    }
    let mut extra = LOGIN_REQUEST.to_vec();
    extra.push(0x01);
    assert_eq!(
        decode(&extra).unwrap_err().kind,
        ErrorKind::Malformed("data after the root element")
    );
}

#[test]
fn the_version_comes_from_the_public_id_or_the_root_namespace() {
    for v in Version::ALL {
        let tree = read_xml(&in_version(&login_xml(), v));
        let bytes = encode(&tree, v).unwrap();
        assert_eq!(bytes[1] as u32, v.public_id());
        assert_eq!(decode(&bytes).unwrap().version, v);
    }
    // Unknown public id (0x01): the xmlns token of the root tells.
    let mut unknown = LOGIN_REQUEST.to_vec();
    unknown[1] = 0x01;
    assert_eq!(decode(&unknown).unwrap().version, Version::V13);
    // A literal public id from the string table.
    let formal = b"-//OMA//DTD WV-CSP 1.2//EN\0";
    let mut literal = vec![0x03, 0x00, 0x00, 0x6A, formal.len() as u8];
    literal.extend(formal);
    literal.extend([0x09]); // <WV-CSP-Message/>
    let d = decode(&literal).unwrap();
    assert_eq!(
        (d.version, d.root.name.as_str()),
        (Version::V12, "WV-CSP-Message")
    );
    // Not CSP, not UTF-8, not WBXML 1.x.
    let mut other = LOGIN_REQUEST.to_vec();
    other[1] = 0x05;
    assert_eq!(
        decode(&other).unwrap_err().kind,
        ErrorKind::PublicId("0x5".into())
    );
    let mut latin1 = LOGIN_REQUEST.to_vec();
    latin1[2] = 0x04;
    assert_eq!(decode(&latin1).unwrap_err().kind, ErrorKind::Charset(4));
    let mut v4 = LOGIN_REQUEST.to_vec();
    v4[0] = 0x04;
    assert_eq!(
        decode(&v4).unwrap_err(),
        WbxmlError {
            at: 0,
            kind: ErrorKind::Version(4)
        }
    );
}

#[test]
fn string_table_references_read_and_stay_inside_the_table() {
    // <WV-CSP-Message><Session><SessionID>STR_T 3</SessionID>
    let doc = |index: u8| {
        vec![
            0x03, 0x12, 0x6A, 0x07, b'a', b'b', 0x00, b'c', b'd', b'e', 0x00, 0x49, 0x6D, 0x6F,
            0x83, index, 0x01, 0x01, 0x01,
        ]
    };
    let d = decode(&doc(3)).unwrap();
    assert_eq!(d.root.text_at(&["Session", "SessionID"]), Some("cde"));
    assert_eq!(
        decode(&doc(1))
            .unwrap()
            .root
            .text_at(&["Session", "SessionID"]),
        Some("b")
    );
    assert_eq!(decode(&doc(7)).unwrap_err().kind, ErrorKind::StringIndex(7));
    // A table whose length runs past the input.
    assert_eq!(
        decode(&[0x03, 0x12, 0x6A, 0x7F, 0x00]).unwrap_err().kind,
        ErrorKind::Truncated
    );
}

#[test]
fn refuses_what_the_csp_does_not_use() {
    let with = |token: &[u8]| {
        let mut d = vec![0x03, 0x12, 0x6A, 0x00, 0x49, 0x6D];
        d.extend(token);
        d.extend([0x01, 0x01]);
        decode(&d).unwrap_err().kind
    };
    assert_eq!(
        with(&[0x04, 0x00]),
        ErrorKind::Unsupported("a literal tag or attribute name")
    );
    assert_eq!(
        with(&[0x43, 0x05, 0x01]),
        ErrorKind::Unsupported("a processing instruction")
    );
    assert_eq!(with(&[0x40, b'x', 0x00]), ErrorKind::Unsupported("EXT_I"));
    assert_eq!(
        with(&[0x81, 0x00]),
        ErrorKind::Unsupported("EXT_T_1 and EXT_T_2")
    );
    assert_eq!(
        with(&[0xC0]),
        ErrorKind::Unsupported("EXT_0, EXT_1 and EXT_2")
    );
    assert_eq!(with(&[0x80, 0x5E]), ErrorKind::UnknownValue(0x5E));
    assert_eq!(
        with(&[0x3E]),
        ErrorKind::UnknownTag {
            page: 0,
            token: 0x3E
        }
    );
    assert_eq!(
        with(&[0x00, 0x0C, 0x05]),
        ErrorKind::UnknownTag {
            page: 12,
            token: 0x05
        }
    );
    assert_eq!(
        with(&[0xC3, 0x01, 0x05]),
        ErrorKind::Opaque("value in <Session>".into())
    );
    // An attribute that is not a namespace, and a bad opaque integer.
    let d = [0x03, 0x12, 0x6A, 0x00, 0x89, 0x20, 0x01];
    assert_eq!(
        decode(&d).unwrap_err().kind,
        ErrorKind::UnknownAttribute {
            page: 0,
            token: 0x20
        }
    );
    let d = [
        0x03, 0x12, 0x6A, 0x00, 0x4B, 0xC3, 0x05, 1, 2, 3, 4, 5, 0x01,
    ];
    assert_eq!(
        decode(&d).unwrap_err().kind,
        ErrorKind::Opaque("integer of 5 octets in <Code>".into())
    );
    // A multi-byte integer past 32 bits.
    let d = [0x03, 0x12, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
    assert_eq!(decode(&d).unwrap_err().kind, ErrorKind::Integer);
}

#[test]
fn depth_elements_and_text_are_bounded() {
    let nest = |n: usize| {
        let mut d = vec![0x03, 0x12, 0x6A, 0x00];
        d.extend(std::iter::repeat_n(0x6D, n));
        d.extend(std::iter::repeat_n(0x01, n));
        d
    };
    assert!(decode(&nest(Rules::CSP.max_depth)).is_ok());
    assert_eq!(
        decode(&nest(Rules::CSP.max_depth + 1)).unwrap_err().kind,
        ErrorKind::TooBig
    );
    assert_eq!(
        decode(&nest(MAX_INPUT / 2)).unwrap_err().kind,
        ErrorKind::TooBig
    );
    let flat = |n: usize| {
        let mut d = vec![0x03, 0x12, 0x6A, 0x00, 0x6D];
        d.extend(std::iter::repeat_n(0x2F, n));
        d.push(0x01);
        d
    };
    assert!(decode(&flat(Rules::CSP.max_elements - 1)).is_ok());
    assert_eq!(
        decode(&flat(Rules::CSP.max_elements)).unwrap_err().kind,
        ErrorKind::TooBig
    );
    // One long table string referenced again and again.
    let mut bomb = vec![0x03, 0x12, 0x6A];
    mb_u32(&mut bomb, 0x7900);
    bomb.extend(std::iter::repeat_n(b'x', 0x78FF));
    bomb.extend([0x00, 0x6F]);
    for _ in 0..40 {
        bomb.extend([0x83, 0x00]);
    }
    bomb.push(0x01);
    assert_eq!(decode(&bomb).unwrap_err().kind, ErrorKind::TooBig);
    assert_eq!(
        decode(&vec![0; MAX_INPUT + 1]).unwrap_err().kind,
        ErrorKind::TooBig
    );
}

#[test]
fn integers_and_dates_are_opaque_only_in_their_canonical_spelling() {
    assert_eq!(integer_to_opaque("0"), Some(vec![0]));
    assert_eq!(integer_to_opaque("255"), Some(vec![0xFF]));
    assert_eq!(integer_to_opaque("65536"), Some(vec![1, 0, 0]));
    assert_eq!(integer_to_opaque("4294967295"), Some(vec![0xFF; 4]));
    for s in ["", "007", "+1", "4294967296", " 1", "1.0"] {
        assert_eq!(integer_to_opaque(s), None, "{s}");
    }
    let packed = date_to_opaque("2026-05-01T12:00:07Z").unwrap();
    assert_eq!(
        date_from_opaque(&packed).as_deref(),
        Some("2026-05-01T12:00:07Z")
    );
    // Year 2026 = 0x7EA in 12 bits after two zero bits, month 5, day 1, 12:00:07.
    assert_eq!(packed, [0x1F, 0xA9, 0x42, 0xC0, 0x07, b'Z']);
    for s in [
        "20010925T1340Z",
        "2026-13-01T12:00:07Z",
        "2026-05-01T12:00:07+01:00",
        "2026-05-01T12:00:07z",
    ] {
        assert_eq!(date_to_opaque(s), None, "{s}");
    }
    // Such spellings still travel, as strings.
    let odd = message(
        None,
        "Request",
        "<SendMessage-Request><MessageInfo><ContentSize>007</ContentSize>\
         <DateTime>20010925T1340Z</DateTime></MessageInfo></SendMessage-Request>",
    );
    round_trip(&odd, Version::V13);
}

#[test]
fn older_versions_round_trip_what_they_define() {
    for v in [Version::V11, Version::V12] {
        for doc in requests() {
            let mut doc = in_version(&doc, v);
            if v == Version::V11 {
                // Both came with CSP 1.2.
                doc = doc
                    .replace("<ReceiveList>T</ReceiveList>", "")
                    .replace("<Auto-Subscribe>T</Auto-Subscribe>", "")
                    .replace("BlockEntity-Request", "BlockUser-Request");
            }
            round_trip(&doc, v);
        }
    }
    // 1.3 has elements 1.2 has not.
    let doc = message(None, "Request", "<CreateList-Response/>");
    let tree = read_xml(&in_version(&doc, Version::V12));
    assert_eq!(
        encode(&tree, Version::V12).unwrap_err(),
        EncodeError::UnknownElement {
            name: "CreateList-Response".into(),
            version: Version::V12
        }
    );
    assert!(encode(&read_xml(&doc), Version::V13).is_ok());
}

#[test]
fn encoding_refuses_what_it_cannot_write() {
    let el = Element::new("WV-CSP-Message").attr("lang", "en");
    assert_eq!(
        encode(&el, Version::V13).unwrap_err(),
        EncodeError::Attribute("lang".into())
    );
    let el = Element::new("WV-CSP-Message").attr("xmlns", "urn:x");
    assert_eq!(
        encode(&el, Version::V13).unwrap_err(),
        EncodeError::Namespace("urn:x".into())
    );
    let el = Element::new("Frobnicate-Request");
    assert!(matches!(
        encode(&el, Version::V13),
        Err(EncodeError::UnknownElement { .. })
    ));
}
