# ---- cell split_tune
def split_tune(text):
    """Split one tune in ABC notation into its header and its body.

    text: the tune, lines separated by "\n": header fields ("X:1", "T:title", "M:6/8", "L:1/8",
    "K:G", a letter, a colon, a value), the K: field last, then the music
    Returns (header, body): header a dict from field letter to value, both stripped of spaces
    ({"X": "1", "T": "title", "M": "6/8", "L": "1/8", "K": "G"}); body the lines after the K:
    line, joined with "\n", stripped of leading and trailing white space.
    """
    ### BEGIN SOLUTION
    header, lines = {}, text.strip().splitlines()
    for i, line in enumerate(lines):
        name, _, value = line.partition(":")
        header[name.strip()] = value.strip()
        if name.strip() == "K":  # the K: field ends the header
            return header, "\n".join(lines[i + 1:]).strip()
    ### END SOLUTION
    return header, ""
# ---- cell tokenize_abc
def tokenize_abc(body):
    """The musical tokens of a tune's body, in order.

    body: ABC music, e.g. "|: G2A B>c | d2 ^c/2d/2 e3 :|"
    Returns a list of strings, one per token, white space and line breaks dropped:
    - a bar line: "|", "||", "|:", ":|", "::" or "|]" (the longest that matches);
    - a note: an optional accidental ("^", "^^", "_", "__", "="), a letter A-G or a-g, octave marks
      ("," or "'", any number), and a length: digits, slashes, digits ("2", "/2", "3/2", "/");
    - a rest: "z" and a length.
    Raises ValueError, naming the character, at anything else.
    """
    ### BEGIN SOLUTION
    tokens, pos = [], 0
    while pos < len(body):
        match = TOKEN_RE.match(body, pos)
        if match is None:
            raise ValueError(f"unexpected character {body[pos]!r} at position {pos}")
        if not match.group(0).isspace():
            tokens.append(match.group(0))
        pos = match.end()
    ### END SOLUTION
    return tokens
