package inject

import (
	"fmt"
	"slices"
)

// sovOverrideAt: an instruction noun at j in a verb-final language, with
// a "previous" word before it and an ignore-verb after it: Turkish
// "önceki tüm talimatları yok say", Hindi "पिछले सभी निर्देशों को अनदेखा
// करें". overrideAt reads verb-first languages; these put the verb last.
// Only these languages' verbs count, so English word order, where a
// noun followed by "ignore" is a sentence's subject, is not read this way.
func sovOverrideAt(toks []Token, cats []uint32, j int) bool {
	prev := false
	for k := max(0, j-3); k < j; k++ {
		if cats[k]&catPrevStrong != 0 {
			prev = true
		}
	}
	if !prev {
		return false
	}
	for k := j + 1; k < len(toks) && k <= j+3; k++ {
		h := toks[k].Hash
		if slices.Contains(sovNegs, toks[k-1].Hash) {
			return false // Hindi "मत भूलो": do not forget
		}
		if slices.Contains(sovIgnore, h) || h == hYok && k+1 < len(toks) && slices.Contains(sovSay, toks[k+1].Hash) {
			return true
		}
	}
	return false
}

// normHashes hashes words as scanned text's tokens are hashed, after
// normalisation (diacritics, nukta and the like), one token each.
func normHashes(words ...string) []uint64 {
	hs := make([]uint64, len(words))
	for i, w := range words {
		_, toks := normTokens(w)
		if len(toks) != 1 {
			panic(fmt.Sprintf("inject: %q is %d tokens", w, len(toks)))
		}
		hs[i] = toks[0].Hash
	}
	return hs
}

var (
	// Turkish "görmezden gel", "unut", "atla"; Hindi "अनदेखा", "भूल",
	// "नज़रअंदाज़"
	sovIgnore = normHashes("görmezden", "unut", "unutun", "atla", "atlayın", "अनदेखा", "भूल", "भूलो",
		"नज़रअंदाज़", "नजरअंदाज")
	sovNegs = normHashes("मत", "न")
	hYok    = HashString("yok")
	sovSay  = normHashes("say", "sayın", "sayin")
)
