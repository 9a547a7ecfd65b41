//! Word lists for the synthetic ACDB: Sesotho given names and surnames, villages, staff logins.
//! Spellings follow Lesotho orthography (`tš`, `'M` prefixes), so text is not all ASCII.

pub(super) const FEMALE_NAMES: &[&str] = &[
    "Lerato",
    "Palesa",
    "Lineo",
    "Mamello",
    "Nthabiseng",
    "Puleng",
    "Limpho",
    "Rethabile",
    "Mosa",
    "Nthati",
    "'Malerato",
    "'Mamosa",
    "Relebohile",
    "Lipuo",
    "Masechaba",
    "Ntšepeng",
    "Keneuoe",
    "Mpolokeng",
    "Lebohang",
    "Matšeliso",
    "Boitumelo",
    "Reitumetse",
    "Makhotso",
    "Liteboho",
];

pub(super) const MALE_NAMES: &[&str] = &[
    "Thabo",
    "Teboho",
    "Tšepo",
    "Khotso",
    "Motlatsi",
    "Keketso",
    "Bokang",
    "Tumelo",
    "Karabo",
    "Retšelisitsoe",
    "Seabata",
    "Mohlomphehi",
    "Thabang",
    "Moeketsi",
    "Tlali",
    "Lehlohonolo",
    "Mpho",
    "Neo",
    "Tšeliso",
    "Sello",
    "Rorisang",
    "Katleho",
    "Lerotholi",
    "Ntate",
];

pub(super) const SURNAMES: &[&str] = &[
    "Mokoena",
    "Molapo",
    "Letsie",
    "Mohapi",
    "Ntšekhe",
    "Sekhesa",
    "Motaung",
    "Nkhahle",
    "Lerotholi",
    "Mofokeng",
    "Ramakatsa",
    "Thamae",
    "Mosothoane",
    "Seeiso",
    "Majoro",
    "Makhetha",
    "Mokhothu",
    "Phakoe",
    "Tlali",
    "Khoabane",
    "Mokhele",
    "Ralitsie",
    "Moshoeshoe",
    "Matšela",
    "Sehloho",
    "Lesia",
    "Nqosa",
    "Pitso",
    "Masupha",
    "Hlalele",
    "Mahase",
    "Tšoeu",
    "Lebesa",
    "Mphutlane",
];

/// Long names, so that fixed-width assumptions break in tests rather than in production.
pub(super) const LONG_SURNAMES: &[&str] = &[
    "Ramakatsa-Lerotholi Seeiso",
    "Mphutlane-Mokhothu oa Ha Makhetha",
    "Moshoeshoe-Sekhesa Ntšekhe",
];

pub(super) const LONG_GIVEN_NAMES: &[&str] =
    &["Mamohlomphehi-Relebohile", "Retšelisitsoe Lehlohonolo"];

/// Villages around each site, by site code.
pub(super) fn villages(site: &str) -> &'static [&'static str] {
    match site {
        "MAK" => &["Ha Makebe", "Ha Mosiuoa", "Ha Tsolo"],
        "MAS" => &["Mashai", "Ha Sekoati", "Ha Lesia"],
        "SHG" => &["Sehonghong", "Ha Thoora", "Ha Ntšekhe"],
        "LEB" => &["Lebakeng", "Ha Makhaola"],
        "SEH" => &["Sehlabathebe", "Ha Paulus", "Mavuka"],
        "MAT" => &["Matsoaing", "Ha Tšiu"],
        "TLH" => &["Tlhanyaku", "Ha Moshebi"],
        "TOS" => &["Tosing", "Ha Ramatšeliso"],
        "SEB" => &["Sebapala", "Ha Mokotjo"],
        "RIB" => &["Ribaneng", "Ha Ntjabane"],
        _ => &["Ketane", "Ha Nohana"],
    }
}

pub(super) const STAFF: &[&str] = &["admin", "CC Portal", "mmokoena", "tlerotholi", "lmohapi"];

pub(super) const SAINTS: &[&str] = &["Monica", "Paul", "Joseph", "Theresa", "Peter", "Mary"];

/// ASCII spelling for e-mail addresses: `Ntšekhe` → `ntsekhe`, `'Malerato` → `malerato`.
pub(super) fn ascii_login(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'š' | 'Š' => Some('s'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
