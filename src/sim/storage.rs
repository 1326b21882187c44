//! The three message memories of a modem ("SM" on the SIM, "ME" in the modem,
//! "SR" for status reports), each a fixed number of slots.

use crate::pdu::Pdu;

/// A message memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Mem {
    Sm,
    Me,
    Sr,
}

impl Mem {
    pub(super) fn name(self) -> &'static str {
        match self {
            Mem::Sm => "SM",
            Mem::Me => "ME",
            Mem::Sr => "SR",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SM" => Some(Mem::Sm),
            "ME" => Some(Mem::Me),
            "SR" => Some(Mem::Sr),
            _ => None,
        }
    }
}

/// `<stat>` of a stored message (TS 27.005 §3.1).
pub(super) const REC_UNREAD: u8 = 0;
pub(super) const REC_READ: u8 = 1;
pub(super) const STO_UNSENT: u8 = 2;
pub(super) const STO_SENT: u8 = 3;

/// Text-mode `<stat>` names.
pub(super) fn stat_text(stat: u8) -> &'static str {
    match stat {
        REC_UNREAD => "REC UNREAD",
        REC_READ => "REC READ",
        STO_UNSENT => "STO UNSENT",
        STO_SENT => "STO SENT",
        _ => "ALL",
    }
}

/// One stored message: its `<stat>` and its PDU (SMSC field first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) stat: u8,
    pub(super) pdu: Pdu,
    /// The PDU bytes as `AT+CMGR` prints them.
    pub(super) bytes: Vec<u8>,
    /// The TPDU length (the `<length>` of `+CMGR`).
    pub(super) tpdu_len: usize,
}

impl Slot {
    /// `None` if the PDU cannot be encoded (it came from our own decoder, so it
    /// can; the check keeps the simulator panic-free).
    pub(super) fn new(stat: u8, pdu: Pdu) -> Option<Self> {
        let mut bytes = Vec::new();
        let tpdu_len = pdu.encode(&mut bytes).ok()?;
        Some(Self {
            stat,
            pdu,
            bytes,
            tpdu_len,
        })
    }
}

/// The memories, persistent across reboots (they are on the SIM and in flash).
#[derive(Debug, Clone)]
pub(super) struct Storage {
    sm: Vec<Option<Slot>>,
    me: Vec<Option<Slot>>,
    sr: Vec<Option<Slot>>,
}

impl Storage {
    pub(super) fn new(sm: usize, me: usize, sr: usize) -> Self {
        Self {
            sm: vec![None; sm],
            me: vec![None; me],
            sr: vec![None; sr],
        }
    }

    pub(super) fn slots(&self, mem: Mem) -> &[Option<Slot>] {
        match mem {
            Mem::Sm => &self.sm,
            Mem::Me => &self.me,
            Mem::Sr => &self.sr,
        }
    }

    fn slots_mut(&mut self, mem: Mem) -> &mut Vec<Option<Slot>> {
        match mem {
            Mem::Sm => &mut self.sm,
            Mem::Me => &mut self.me,
            Mem::Sr => &mut self.sr,
        }
    }

    pub(super) fn used(&self, mem: Mem) -> usize {
        self.slots(mem).iter().filter(|s| s.is_some()).count()
    }

    pub(super) fn total(&self, mem: Mem) -> usize {
        self.slots(mem).len()
    }

    /// Puts a message in the first free slot; its 0-based index, or `None` if full.
    pub(super) fn store(&mut self, mem: Mem, slot: Slot) -> Option<usize> {
        let slots = self.slots_mut(mem);
        let free = slots.iter().position(Option::is_none)?;
        slots[free] = Some(slot);
        Some(free)
    }

    pub(super) fn get_mut(&mut self, mem: Mem, index: usize) -> Option<&mut Option<Slot>> {
        self.slots_mut(mem).get_mut(index)
    }

    /// Empties the slots whose stat `keep` rejects; how many were deleted.
    pub(super) fn delete_where(&mut self, mem: Mem, doomed: impl Fn(u8) -> bool) -> usize {
        let mut n = 0;
        for s in self.slots_mut(mem).iter_mut() {
            if s.as_ref().is_some_and(|s| doomed(s.stat)) {
                *s = None;
                n += 1;
            }
        }
        n
    }
}
