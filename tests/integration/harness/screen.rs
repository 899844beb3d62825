//! A terminal screen replayed from what a run wrote to a pseudo-terminal: what the operator
//! would see (the progress bar redrawn in place, messages above it), not the raw bytes.

/// A terminal screen, just enough of one to replay what indicatif and the tool draw: printable
/// characters with line wrap, CR, LF, cursor up/down/column, erase in line and below.
pub struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    width: usize,
}

impl Screen {
    pub fn new(width: usize) -> Screen {
        Screen {
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            width,
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
        &mut self.rows[self.row]
    }

    fn put(&mut self, c: char) {
        if self.col >= self.width {
            self.row += 1;
            self.col = 0;
        }
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col + 1, ' ');
        }
        line[col] = c;
        self.col += 1;
    }

    pub fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => self.col = 0,
                '\n' => self.row += 1,
                '\x08' => self.col = self.col.saturating_sub(1),
                '\x1b' => match chars.next() {
                    Some('[') => {
                        let mut params = String::new();
                        let mut last = ' ';
                        for d in chars.by_ref() {
                            if ('@'..='~').contains(&d) {
                                last = d;
                                break;
                            }
                            params.push(d);
                        }
                        self.csi(&params, last);
                    }
                    Some('(' | ')') => {
                        chars.next();
                    }
                    _ => {}
                },
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
    }

    fn csi(&mut self, params: &str, last: char) {
        let n: Option<usize> = params
            .trim_start_matches('?')
            .split(';')
            .next()
            .and_then(|p| p.parse().ok());
        let count = n.unwrap_or(1).max(1);
        match last {
            'A' => self.row = self.row.saturating_sub(count),
            'B' => self.row += count,
            'C' => self.col = (self.col + count).min(self.width),
            'D' => self.col = self.col.saturating_sub(count),
            'G' => self.col = count - 1,
            'K' => {
                let col = self.col;
                let line = self.line();
                match n.unwrap_or(0) {
                    0 => line.truncate(col),
                    1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    _ => line.clear(),
                }
            }
            'J' => {
                let col = self.col;
                match n.unwrap_or(0) {
                    0 => {
                        self.line().truncate(col);
                        self.rows.truncate(self.row + 1);
                    }
                    _ => self.rows.iter_mut().for_each(Vec::clear),
                }
            }
            _ => {} // colours, cursor visibility
        }
    }

    /// Everything on screen in reading order with all whitespace removed, so that a message
    /// wrapped over several rows still reads as one.
    pub fn condensed(&self) -> String {
        self.rows
            .iter()
            .flatten()
            .filter(|c| !c.is_whitespace())
            .collect()
    }

    pub fn text(&self) -> String {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn condense(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}
