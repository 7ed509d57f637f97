import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseShaCrypt, verifyShaCrypt } from './sha-crypt.js';

// made by glibc's crypt(3) (Python's crypt module): every password-length class around the 32- and 64-byte
// digest sizes, with and without rounds=, salts of 1–16 characters
const GLIBC: [string, string][] = [
  ['', '$5$Hm47Ai5P29r$/EaAX2bdvi4nKC1YWKVoc.9/sNYFKEIYyJ2RgUTGml2'],
  ['', '$6$6S9q5DQ5m4Q3FZ$SOEAUy47DP76w0Jhr3XGfRIBprirfBC3F72BOK1dz6OplU4ofxN4UB.fyPO6Ug16sEjbUUWiWx07to79Ln1VI/'],
  ['a', '$5$rounds=1953$GDbLBMjA65Ozqc$93oamSchBP3k56Qq5418Bil2HaEqF5TdiDbRY0VsfrC'],
  ['a', '$6$rounds=2550$iaTLT8azftY7DpJ$Jq/FcE0agl7UaVBd4NwzuV4UvRj7rbgBYMQ4trNjozurxcczy3w1Tq26UohNohuoX6oZHL8/8FB.8PUjdLqn21'],
  ['Hello world!', '$5$Hyp37cfgzu6$tmR.OzplIgFwy9wly/pTUQ6jW3UBUT7Igz2ffHnkyz4'],
  ['Hello world!', '$6$Ww6$RnwvNSoU8z7gsCModd/EVKw173xk8iW/AngVyjuBxagU99cY1tvIZNdcwsuJB70XGhNNskMeRVoRaZtvWG4Gq1'],
  ['x'.repeat(31), '$5$rounds=1582$bt$PynRdvd57yUmMvwGI7EcBK1dTgHd1dOW0B3k8y4lxNB'],
  ['x'.repeat(31), '$6$rounds=1800$g0vhJCz5PYETm$MHjWlbNRuMQ38xgjvLvGtg35jOOLpyMMoaXp9ViYvVccHO0H.zoZCRfjuVaDw6T6MC0QBuRcophTYqThOEfzC/'],
  ['y'.repeat(32), '$5$8JtnXFrXphkRH8KH$sYswXHrlXt0B3DSvGW06PMcZ4CBjs85MHfPJIsmn5X5'],
  ['y'.repeat(32), '$6$R/yLVY.G$3NffOkD1AtfTx3bJJrHAzQQEjAQCahl2HFSeIW9QoQeMuh.tQwFqJvKmqw4xidaX41r7Xv8/B/8DM28XK/yQg1'],
  ['z'.repeat(64), '$5$rounds=1137$jcE4ummnmBxn5M$ow.Re/Kdaku6Aq/ymc0FwIth3XjhBkLoaSqVWTWUo8A'],
  ['z'.repeat(64), '$6$rounds=2160$sICf4B.$A4iwzw8ycGOWe6Z3Tnu3SpQ2//uyLLOQ6kltZMPbDOzrAASlwfZodtTb9M2x14f/IC0bpc5VMQfxYYd9DLj171'],
  ['w'.repeat(65), '$5$Ai17O$yvZGAP/PcEYwUyp062tNTiuJwpu./ZeI9V8F8TuwNf0'],
  ['w'.repeat(65), '$6$HUgiwDCyvxxb8$wFiMVh0IN1/uZWcAl/D3FpWPvNd6mQQNRJrp..pjWL6BOtlABGTdk2cVDqz6sauhliukYBNvJLyoyKlmqqpC/0'],
  ['v'.repeat(200), '$5$rounds=2057$BfVxI$/VJcReQMkpKOc2pfvobRMVm7raID5QKcb/xTzPWtzC1'],
  ['v'.repeat(200), '$6$rounds=2947$O$TH3gKdmGugZPh6Gr0dAjzDJD7xJCAlczixpzugpeK/RmJp24iY9Vi4FJm.na3T/XNZoNDGLPdvXtzKUR8cY7K1'],
  ['pässwörd ✓', '$5$G1a9ViJhQeQM$RwBQ9.9VMROzUt.aUny7arZ0NwTYJ6DRJpDZk7ElyT/'],
  ['pässwörd ✓', '$6$nRNzh11X$DRoNzpY61sbHhsdBpJWcDiTt4cpgGFNQDPV8Tbpmd/tnO.BTIKSMSD0RIts51fiHJEZ/B2FyNYGzdiuG/jk7q/'],
  // a salt of more than 16 characters is cut to 16 by crypt(3) when hashing
  ['pw', '$6$saltstringsaltst$gy1zxUtw0TfuOti2U7OwY3ShlTzD4Ar6iVSYOvBAloOD19JniMwDuOZ6idrA0g1XfOkmS/Sgla.nfd4eRvxmX0'],
];

test('agrees with glibc crypt(3) for every password-length class, both algorithms, with and without rounds', async () => {
  for (const [password, hash] of GLIBC) {
    assert.equal(await verifyShaCrypt(password, hash), true, `${password} ${hash}`);
    assert.equal(await verifyShaCrypt(`${password}!`, hash), false, hash);
    assert.equal(await verifyShaCrypt(password.slice(1), hash), password === '', hash);
  }
});

test('hostile parameters are refused before any work: huge rounds, a huge password, bad lengths', async () => {
  const ok = GLIBC[1]![1];
  assert.notEqual(parseShaCrypt(ok), null);
  assert.equal(parseShaCrypt(ok.replace('$6$', '$6$rounds=100001$')), null);
  assert.equal(parseShaCrypt(ok.slice(0, -1)), null);
  assert.equal(parseShaCrypt(ok.replace('$6$', '$5$')), null);
  assert.equal(parseShaCrypt('$6$a$b$c'), null);
  assert.equal(await verifyShaCrypt('p'.repeat(5000), ok), false);
  assert.equal(await verifyShaCrypt('', `${ok}\n`), false);
});
