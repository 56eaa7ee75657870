//! Message flags as Maildir keeps them: the letters after `:2,` in a file name in `cur/`, sorted
//! (D draft, F flagged, R replied, S seen, T trashed). Letters we do not map (Dovecot's keyword
//! letters `a`..`z`, `P` passed) are kept as they are, so a rename never loses them.

/// The five IMAP system flags that have letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Draft,
    Flagged,
    Answered,
    Seen,
    Deleted,
}

impl Flag {
    pub const ALL: [Flag; 5] = [
        Flag::Draft,
        Flag::Flagged,
        Flag::Answered,
        Flag::Seen,
        Flag::Deleted,
    ];

    pub fn letter(self) -> char {
        match self {
            Flag::Draft => 'D',
            Flag::Flagged => 'F',
            Flag::Answered => 'R',
            Flag::Seen => 'S',
            Flag::Deleted => 'T',
        }
    }

    /// The IMAP name (`\Seen`...).
    pub fn name(self) -> &'static str {
        match self {
            Flag::Draft => "\\Draft",
            Flag::Flagged => "\\Flagged",
            Flag::Answered => "\\Answered",
            Flag::Seen => "\\Seen",
            Flag::Deleted => "\\Deleted",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The flags of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    bits: u8,
    /// Letters kept as read (keywords, `P`), sorted.
    other: String,
}

impl Flags {
    /// From a file name (`base:2,FS`); a name without info has none.
    pub fn from_name(name: &str) -> Flags {
        let mut f = Flags::default();
        if let Some((_, info)) = name.split_once(":2,") {
            for c in info.chars() {
                match Flag::ALL.iter().find(|fl| fl.letter() == c) {
                    Some(&fl) => f.insert(fl),
                    None if c.is_ascii_alphabetic() && !f.other.contains(c) => f.other.push(c),
                    None => {}
                }
            }
        }
        let mut other: Vec<char> = f.other.chars().collect();
        other.sort_unstable();
        f.other = other.into_iter().collect();
        f
    }

    pub fn contains(&self, f: Flag) -> bool {
        self.bits & f.bit() != 0
    }

    pub fn insert(&mut self, f: Flag) {
        self.bits |= f.bit();
    }

    pub fn remove(&mut self, f: Flag) {
        self.bits &= !f.bit();
    }

    /// The same with no system flag (STORE FLAGS replaces those, keeps the other letters).
    pub fn without_system(mut self) -> Flags {
        self.bits = 0;
        self
    }

    /// Keyword letters `a`..`z` as bits (bit i: the folder's keyword i, `dovecot-keywords`).
    pub fn keywords(&self) -> u32 {
        self.other
            .bytes()
            .filter(u8::is_ascii_lowercase)
            .fold(0, |m, b| m | 1 << (b - b'a'))
    }

    /// The same with these keyword letters instead of its own (other letters are kept).
    pub fn with_keywords(mut self, mask: u32) -> Flags {
        let mut other: Vec<char> = self
            .other
            .chars()
            .filter(|c| !c.is_ascii_lowercase())
            .collect();
        other.extend(
            (0..26u8)
                .filter(|i| mask & 1 << i != 0)
                .map(|i| char::from(b'a' + i)),
        );
        other.sort_unstable();
        self.other = other.into_iter().collect();
        self
    }

    /// The system flags, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        Flag::ALL.into_iter().filter(|f| self.contains(*f))
    }

    /// The `:2,` info: letters in ASCII order, as Maildir requires.
    pub fn info(&self) -> String {
        let mut letters: Vec<char> = self.iter().map(Flag::letter).collect();
        letters.extend(self.other.chars());
        letters.sort_unstable();
        let mut s = String::from(":2,");
        s.extend(letters);
        s
    }
}

/// The part of a file name before the info (`:`), which never changes.
pub fn base_of(name: &str) -> &str {
    name.split_once(':').map_or(name, |(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_with_sorted_letters() {
        for (name, info, seen, deleted) in [
            ("1.M1P1.h", ":2,", false, false),
            ("1.M1P1.h:2,", ":2,", false, false),
            ("1.M1P1.h:2,S", ":2,S", true, false),
            ("1.M1P1.h:2,TSa", ":2,STa", true, true),
            ("1.M1P1.h:2,FRDP", ":2,DFPR", false, false),
        ] {
            let f = Flags::from_name(name);
            assert_eq!(f.info(), info, "{name}");
            assert_eq!(f.contains(Flag::Seen), seen);
            assert_eq!(f.contains(Flag::Deleted), deleted);
        }
    }

    #[test]
    fn insert_and_remove_keep_other_letters() {
        let mut f = Flags::from_name("x:2,Sb");
        f.insert(Flag::Answered);
        f.remove(Flag::Seen);
        assert_eq!(f.info(), ":2,Rb");
        assert_eq!(base_of("x:2,Sb"), "x");
        assert_eq!(base_of("x"), "x");
        assert_eq!(Flags::from_name("x:2,PSbd").keywords(), 0b1010);
        let f = Flags::from_name("x:2,PSbd").with_keywords(0b1_0001);
        assert_eq!(f.info(), ":2,PSae");
    }
}
