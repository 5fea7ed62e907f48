/* Synthetic labelled query log (see jiwa_querygen.h). The templates were
 * written for this project; slots: {c} a place, {n} a nationality, {d} a
 * duration, each in the template's language. */
#include "jiwa_querygen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"

#define NT 8 /* templates per language, at most */

typedef struct {
  const char *name;
  const char *en[NT], *id[NT], *it[NT];
} intent_t;

static const intent_t k_intents[JIWA_QUERYGEN_INTENTS] = {
    {"kitas_duration",
     {"How long does it take to get a KITAS?",
      "How long is the KITAS processing time in {c}?",
      "How many weeks until my KITAS is approved?",
      "KITAS processing time for a {n} citizen?",
      "How long does the KITAS process take from start to finish?",
      "When will my KITAS be ready if I apply now?"},
     {"Berapa lama proses KITAS?",
      "Berapa lama waktu pengurusan KITAS di {c}?",
      "Proses KITAS butuh waktu berapa minggu?",
      "Kapan KITAS saya jadi kalau saya apply sekarang?",
      "Lama pembuatan KITAS untuk warga {n} berapa hari?"},
     {"Quanto tempo ci vuole per ottenere il KITAS?",
      "Quanto tempo serve per il KITAS a {c}?",
      "Tempi di attesa per il KITAS per un cittadino {n}?",
      "Dopo quante settimane arriva il KITAS?",
      "Quanto dura la procedura del KITAS dall'inizio alla fine?"}},
    {"kitas_cost",
     {"How much does a KITAS cost?",
      "What is the price of a {d} KITAS?",
      "KITAS cost for a {n} in {c}?",
      "How much should I pay an agent for a KITAS?",
      "What are the government fees for a KITAS?",
      "Is a KITAS expensive? What's the total cost?"},
     {"Berapa biaya KITAS?",
      "Harga KITAS {d} berapa?",
      "Biaya bikin KITAS lewat agen berapa?",
      "Berapa biaya resmi pemerintah untuk KITAS?",
      "Total biaya KITAS untuk warga {n} berapa ya?"},
     {"Quanto costa il KITAS?",
      "Qual è il prezzo di un KITAS di {d}?",
      "Quanto si paga un agente per il KITAS?",
      "Costo totale del KITAS per un {n} a {c}?",
      "Quali sono le tasse governative per il KITAS?"}},
    {"kitas_documents",
     {"What documents do I need for a KITAS?",
      "Which papers are required to apply for a KITAS?",
      "KITAS requirements: passport, photos, what else?",
      "Do I need a sponsor letter for my KITAS application?",
      "Document checklist for a KITAS in {c}?",
      "What do I have to submit for the KITAS?"},
     {"Apa saja dokumen untuk KITAS?",
      "Syarat KITAS apa saja?",
      "Dokumen yang diperlukan untuk mengajukan KITAS?",
      "Apakah perlu surat sponsor untuk KITAS?",
      "Persyaratan KITAS untuk warga {n} apa saja?"},
     {"Quali documenti servono per il KITAS?",
      "Che documenti devo presentare per il KITAS?",
      "Requisiti per il KITAS: passaporto, foto, cos'altro?",
      "Serve una lettera dello sponsor per il KITAS?",
      "Lista dei documenti per il KITAS a {c}?"}},
    {"voa_extension",
     {"How do I extend my visa on arrival?",
      "Can I extend my VOA online?",
      "VOA extension: where do I go in {c}?",
      "How many times can a visa on arrival be extended?",
      "My VOA expires next week, how do I extend it?",
      "Extend VOA for another 30 days, what is the process?"},
     {"Bagaimana cara perpanjang VOA?",
      "Perpanjangan visa on arrival bisa online?",
      "Perpanjang VOA di kantor imigrasi {c}?",
      "VOA saya habis minggu depan, cara perpanjangnya gimana?",
      "Berapa kali VOA bisa diperpanjang?"},
     {"Come si rinnova il visto all'arrivo?",
      "Posso estendere il VOA online?",
      "Estensione del VOA: dove devo andare a {c}?",
      "Il mio VOA scade la settimana prossima, come lo prolungo?",
      "Quante volte si può estendere il visto on arrival?"}},
    {"b211a_visit_visa",
     {"What is the B211A visa?",
      "Can I work on a B211A visit visa?",
      "How long can I stay with a B211A?",
      "B211A visa for a {n}: how to apply?",
      "Is the B211A single entry or multiple entry?",
      "Can a B211A visit visa be extended to {d}?"},
     {"Apa itu visa B211A?",
      "Visa kunjungan B211A bisa untuk kerja?",
      "Berapa lama bisa tinggal dengan B211A?",
      "Cara apply visa B211A untuk warga {n}?",
      "Visa B211A bisa diperpanjang jadi {d}?"},
     {"Che cos'è il visto B211A?",
      "Posso lavorare con un visto turistico B211A?",
      "Quanto posso restare con il B211A?",
      "Come richiedere il visto B211A da {n}?",
      "Il visto B211A si può prolungare a {d}?"}},
    {"remote_worker_visa",
     {"Is there a digital nomad visa in Indonesia?",
      "How do I get the E33G remote worker visa?",
      "Remote worker visa: minimum income requirement?",
      "Can I work remotely for a foreign company from {c}?",
      "E33G visa for a {n} freelancer, is it possible?",
      "Which visa lets me work online for clients abroad?"},
     {"Apakah ada visa digital nomad di Indonesia?",
      "Cara mendapatkan visa remote worker E33G?",
      "Syarat penghasilan untuk visa pekerja jarak jauh?",
      "Boleh kerja remote untuk perusahaan luar negeri dari {c}?",
      "Visa E33G untuk freelancer {n} bisa?"},
     {"Esiste un visto per nomadi digitali in Indonesia?",
      "Come ottenere il visto E33G per lavoratori da remoto?",
      "Visto remote worker: reddito minimo richiesto?",
      "Posso lavorare da remoto per un'azienda straniera da {c}?",
      "Visto E33G per un freelance {n}, è possibile?"}},
    {"pt_pma_setup",
     {"How do I set up a PT PMA in Indonesia?",
      "Steps to register a foreign owned company in {c}?",
      "How long does it take to open a PT PMA?",
      "Can a {n} open a company in Bali?",
      "What is the process to incorporate a PT PMA?",
      "Do I need a notary to establish a PT PMA?"},
     {"Bagaimana cara mendirikan PT PMA?",
      "Langkah-langkah membuat perusahaan asing di {c}?",
      "Berapa lama proses pendirian PT PMA?",
      "Orang {n} bisa buka perusahaan di Bali?",
      "Apakah perlu notaris untuk mendirikan PT PMA?"},
     {"Come si apre una PT PMA in Indonesia?",
      "Passaggi per costituire una società straniera a {c}?",
      "Quanto tempo serve per aprire una PT PMA?",
      "Un {n} può aprire una società a Bali?",
      "Serve un notaio per costituire una PT PMA?"}},
    {"pt_pma_capital",
     {"What is the minimum capital for a PT PMA?",
      "How much paid up capital does a PT PMA need?",
      "PT PMA investment requirement of 10 billion rupiah?",
      "Do I have to deposit the full PT PMA capital in the bank?",
      "Minimum investment for a foreign company in {c}?"},
     {"Berapa modal minimum PT PMA?",
      "Modal disetor PT PMA harus berapa?",
      "Apakah modal PT PMA 10 miliar harus disetor penuh?",
      "Nilai investasi minimum perusahaan asing berapa?",
      "Modal dasar PT PMA untuk warga {n} berapa?"},
     {"Qual è il capitale minimo per una PT PMA?",
      "Quanto capitale versato serve per una PT PMA?",
      "Investimento minimo di 10 miliardi di rupie per la PT PMA?",
      "Devo depositare tutto il capitale della PT PMA in banca?",
      "Investimento minimo per una società straniera a {c}?"}},
    {"npwp",
     {"How do I get an NPWP tax number?",
      "Do foreigners need an NPWP?",
      "Where do I register for an NPWP in {c}?",
      "Can I apply for an NPWP online with my KITAS?",
      "What is an NPWP and why do I need one?"},
     {"Bagaimana cara membuat NPWP?",
      "Apakah WNA wajib punya NPWP?",
      "Daftar NPWP di kantor pajak {c}?",
      "Bisa bikin NPWP online pakai KITAS?",
      "NPWP untuk orang asing syaratnya apa?"},
     {"Come ottengo il codice fiscale NPWP?",
      "Gli stranieri devono avere un NPWP?",
      "Dove mi registro per l'NPWP a {c}?",
      "Posso richiedere l'NPWP online con il KITAS?",
      "Cos'è l'NPWP e perché mi serve?"}},
    {"nib_oss",
     {"How do I get an NIB through OSS?",
      "What is the OSS system for business licenses?",
      "Which KBLI code should I choose in OSS?",
      "Do I need an NIB for my villa business in {c}?",
      "How to register a business number on OSS RBA?"},
     {"Cara membuat NIB lewat OSS?",
      "Apa itu sistem OSS untuk izin usaha?",
      "Kode KBLI apa yang dipilih di OSS?",
      "Usaha villa di {c} perlu NIB?",
      "Daftar nomor induk berusaha di OSS RBA bagaimana?"},
     {"Come si ottiene il NIB tramite OSS?",
      "Cos'è il sistema OSS per le licenze?",
      "Quale codice KBLI devo scegliere su OSS?",
      "Serve il NIB per affittare la mia villa a {c}?",
      "Come registrare l'attività su OSS RBA?"}},
    {"tax_deadline",
     {"When is the deadline for the annual tax return?",
      "When do I have to file my SPT?",
      "Tax filing deadline for individuals in Indonesia?",
      "Is the SPT due in March or April?",
      "What happens if I file my tax return late?"},
     {"Kapan batas waktu lapor SPT tahunan?",
      "Deadline lapor pajak pribadi kapan?",
      "SPT tahunan harus dilaporkan sebelum tanggal berapa?",
      "Apa denda kalau telat lapor SPT?",
      "Batas akhir pelaporan pajak perusahaan kapan?"},
     {"Qual è la scadenza per la dichiarazione dei redditi?",
      "Entro quando devo presentare lo SPT?",
      "Scadenza della dichiarazione fiscale in Indonesia?",
      "Lo SPT va presentato a marzo o ad aprile?",
      "Cosa succede se presento la dichiarazione in ritardo?"}},
    {"vat",
     {"What is the VAT rate in Indonesia?",
      "Do I have to charge VAT on my invoices?",
      "Is PPN 11 or 12 percent now?",
      "When does my company need to register for VAT?",
      "VAT on villa rental income in {c}?"},
     {"Berapa tarif PPN sekarang?",
      "Apakah saya harus memungut PPN di faktur?",
      "PPN 11 atau 12 persen?",
      "Kapan perusahaan wajib jadi PKP?",
      "PPN untuk sewa villa di {c}?"},
     {"Qual è l'aliquota IVA in Indonesia?",
      "Devo applicare l'IVA sulle fatture?",
      "La PPN è all'11 o al 12 per cento?",
      "Quando la mia società deve registrarsi per l'IVA?",
      "IVA sugli affitti delle ville a {c}?"}},
    {"villa_rental",
     {"How much does it cost to rent a villa in {c}?",
      "Looking for a long term villa rental in {c}",
      "Monthly rent for a 2 bedroom villa in {c}?",
      "Is it better to rent a villa yearly or monthly?",
      "What should I check before signing a villa lease?",
      "Can I rent a villa for {d}?"},
     {"Berapa harga sewa villa di {c}?",
      "Cari villa sewa tahunan di {c}",
      "Sewa villa 2 kamar per bulan di {c} berapa?",
      "Lebih baik sewa villa bulanan atau tahunan?",
      "Bisa sewa villa untuk {d}?"},
     {"Quanto costa affittare una villa a {c}?",
      "Cerco una villa in affitto a lungo termine a {c}",
      "Affitto mensile di una villa con 2 camere a {c}?",
      "Meglio affittare la villa all'anno o al mese?",
      "Posso affittare una villa per {d}?"}},
    {"land_ownership",
     {"Can foreigners buy land in Bali?",
      "What is hak pakai and can a foreigner hold it?",
      "Leasehold vs freehold for a {n} buying property?",
      "Is it safe to buy land with a nominee?",
      "How long can a leasehold on land last?",
      "Can I own a house in {c} as a foreigner?"},
     {"Apakah WNA boleh beli tanah di Bali?",
      "Apa itu hak pakai untuk orang asing?",
      "Hak sewa atau hak milik untuk warga {n}?",
      "Amankah beli tanah pakai nominee?",
      "Orang asing bisa punya rumah di {c}?"},
     {"Gli stranieri possono comprare terreni a Bali?",
      "Cos'è l'hak pakai e uno straniero può averlo?",
      "Leasehold o freehold per un {n} che compra casa?",
      "È sicuro comprare terra tramite un prestanome?",
      "Posso possedere una casa a {c} da straniero?"}},
    {"bank_account",
     {"How can I open a bank account in Indonesia?",
      "Can I open a bank account with a tourist visa?",
      "Which bank is best for foreigners in {c}?",
      "Documents to open a BCA account as a foreigner?",
      "Can a {n} open a local bank account without a KITAS?"},
     {"Bagaimana cara buka rekening bank untuk WNA?",
      "Bisa buka rekening pakai visa turis?",
      "Bank apa yang terbaik untuk orang asing di {c}?",
      "Syarat buka rekening BCA untuk WNA?",
      "Warga {n} bisa buka rekening tanpa KITAS?"},
     {"Come aprire un conto in banca in Indonesia?",
      "Posso aprire un conto con il visto turistico?",
      "Qual è la banca migliore per stranieri a {c}?",
      "Documenti per aprire un conto BCA da straniero?",
      "Un {n} può aprire un conto senza KITAS?"}},
    {"driving_licence",
     {"Can I drive in Bali with my international driving permit?",
      "How do I get an Indonesian driving licence?",
      "Where do I get a SIM C for a motorbike in {c}?",
      "Is my {n} driving licence valid in Indonesia?",
      "Do I need a local licence to ride a scooter?"},
     {"Bisa nyetir di Bali pakai SIM internasional?",
      "Cara membuat SIM untuk WNA?",
      "Bikin SIM C motor di {c} di mana?",
      "SIM {n} berlaku di Indonesia?",
      "Perlu SIM lokal untuk naik motor?"},
     {"Posso guidare a Bali con la patente internazionale?",
      "Come si ottiene la patente indonesiana?",
      "Dove faccio la patente SIM C per lo scooter a {c}?",
      "La patente {n} è valida in Indonesia?",
      "Serve una patente locale per guidare il motorino?"}},
    {"spouse_kitas",
     {"Can I get a KITAS through my Indonesian wife?",
      "Spouse KITAS requirements for a {n} husband?",
      "How does the marriage KITAS work?",
      "I married an Indonesian, which visa do I need?",
      "Can my foreign husband be sponsored by me?"},
     {"Cara urus KITAS suami WNA?",
      "Syarat KITAS istri untuk warga {n}?",
      "KITAS karena perkawinan campur bagaimana prosesnya?",
      "Menikah dengan WNI, visa apa yang dibutuhkan?",
      "Apakah istri WNI bisa jadi sponsor KITAS suami?"},
     {"Posso avere il KITAS tramite mia moglie indonesiana?",
      "Requisiti del KITAS coniugale per un marito {n}?",
      "Come funziona il KITAS per matrimonio?",
      "Ho sposato un'indonesiana, che visto mi serve?",
      "Mio marito straniero può essere sponsorizzato da me?"}},
    {"overstay_penalty",
     {"What is the penalty for overstaying my visa?",
      "I overstayed 3 days, how much is the fine?",
      "Overstay fine per day in Indonesia?",
      "Will I be deported or blacklisted for an overstay?",
      "What happens if my visa expired yesterday?"},
     {"Berapa denda overstay?",
      "Saya overstay 3 hari, dendanya berapa?",
      "Denda overstay per hari di Indonesia?",
      "Apakah bisa dideportasi karena overstay?",
      "Visa saya sudah habis kemarin, bagaimana?"},
     {"Qual è la multa per overstay?",
      "Ho superato il visto di 3 giorni, quanto pago?",
      "Multa giornaliera per overstay in Indonesia?",
      "Rischio l'espulsione per un overstay?",
      "Cosa succede se il visto è scaduto ieri?"}},
    {"bpjs",
     {"Do foreigners have to join BPJS?",
      "How do I register for BPJS health insurance?",
      "Is BPJS mandatory for KITAS holders?",
      "How much is the monthly BPJS Kesehatan fee?",
      "Can I use BPJS at hospitals in {c}?"},
     {"Apakah WNA wajib ikut BPJS?",
      "Cara daftar BPJS Kesehatan untuk orang asing?",
      "BPJS wajib untuk pemegang KITAS?",
      "Iuran BPJS Kesehatan per bulan berapa?",
      "BPJS bisa dipakai di rumah sakit {c}?"},
     {"Gli stranieri devono iscriversi alla BPJS?",
      "Come mi iscrivo all'assicurazione sanitaria BPJS?",
      "La BPJS è obbligatoria con il KITAS?",
      "Quanto costa al mese la BPJS Kesehatan?",
      "Posso usare la BPJS negli ospedali di {c}?"}},
    {"golden_visa",
     {"What is the Indonesian golden visa?",
      "How much do I need to invest for a golden visa?",
      "Golden visa for {d} or 10 years?",
      "Does the golden visa allow me to work?",
      "Golden visa requirements for a {n} investor?"},
     {"Apa itu golden visa Indonesia?",
      "Berapa investasi untuk golden visa?",
      "Golden visa 5 tahun atau 10 tahun?",
      "Syarat golden visa untuk investor {n}?",
      "Pemegang golden visa boleh bekerja?"},
     {"Cos'è il golden visa indonesiano?",
      "Quanto devo investire per il golden visa?",
      "Golden visa di 5 o 10 anni?",
      "Requisiti del golden visa per un investitore {n}?",
      "Con il golden visa posso lavorare?"}},
    {"retirement_visa",
     {"Can I retire in Bali? Which visa?",
      "Retirement KITAS age requirement?",
      "What do I need for a retirement visa at 60?",
      "Retirement visa for a {n} pensioner in {c}?",
      "Do I need health insurance for the retirement KITAS?"},
     {"Visa pensiun di Bali syaratnya apa?",
      "Umur minimal KITAS lansia berapa?",
      "KITAS pensiun untuk warga {n}?",
      "Apakah perlu asuransi untuk visa pensiun?",
      "Pensiunan asing bisa tinggal di {c}?"},
     {"Posso andare in pensione a Bali? Con quale visto?",
      "Età minima per il KITAS da pensionato?",
      "Cosa serve per il visto pensione a 60 anni?",
      "Visto pensionati per un {n} a {c}?",
      "Serve l'assicurazione sanitaria per il visto pensione?"}},
    {"kitap",
     {"How do I get a KITAP permanent stay permit?",
      "After how many years can I switch from KITAS to KITAP?",
      "KITAP requirements for a {n}?",
      "Is the KITAP really permanent residency?",
      "Can I apply for KITAP after marrying an Indonesian?"},
     {"Cara mendapatkan KITAP?",
      "Setelah berapa tahun KITAS bisa jadi KITAP?",
      "Syarat KITAP untuk warga {n}?",
      "KITAP itu izin tinggal tetap?",
      "Bisa ajukan KITAP setelah menikah dengan WNI?"},
     {"Come ottenere il KITAP, il permesso permanente?",
      "Dopo quanti anni si passa dal KITAS al KITAP?",
      "Requisiti del KITAP per un {n}?",
      "Il KITAP è una vera residenza permanente?",
      "Posso chiedere il KITAP dopo il matrimonio con un'indonesiana?"}},
    {"work_permit",
     {"Do I need a work permit to work in Indonesia?",
      "What is RPTKA and who applies for it?",
      "How does my employer sponsor my work KITAS?",
      "What is the DKP-TKA fee of 100 dollars per month?",
      "Can I work for a local company in {c} on my KITAS?"},
     {"Apakah perlu izin kerja untuk WNA?",
      "Apa itu RPTKA dan siapa yang mengurus?",
      "Perusahaan sponsor KITAS kerja bagaimana prosesnya?",
      "Biaya DKP-TKA 100 dolar per bulan?",
      "Boleh kerja di perusahaan lokal di {c} dengan KITAS?"},
     {"Serve un permesso di lavoro per lavorare in Indonesia?",
      "Cos'è l'RPTKA e chi lo richiede?",
      "Come fa il mio datore di lavoro a sponsorizzare il KITAS?",
      "Cos'è la tassa DKP-TKA di 100 dollari al mese?",
      "Posso lavorare per un'azienda locale a {c} con il KITAS?"}},
    {"shipping_goods",
     {"How do I ship my household goods to Bali?",
      "Import duty on personal belongings moving to Indonesia?",
      "Can I bring my furniture from {n} origin without tax?",
      "Customs rules for shipping a container to {c}?",
      "Best way to send boxes from Europe to Bali?"},
     {"Cara kirim barang pindahan ke Bali?",
      "Bea masuk barang pribadi pindahan?",
      "Aturan bea cukai kirim kontainer ke {c}?",
      "Kirim kardus dari Eropa ke Bali paling murah?",
      "Barang pindahan kena pajak impor?"},
     {"Come spedisco i miei mobili a Bali?",
      "Dazi doganali sugli effetti personali per il trasloco?",
      "Regole doganali per un container verso {c}?",
      "Il modo migliore per spedire scatoloni dall'Europa a Bali?",
      "Il trasloco paga le tasse di importazione?"}},
};

static const char *const k_cities[] = {"Canggu", "Ubud",    "Seminyak",
                                       "Sanur",  "Denpasar", "Uluwatu",
                                       "Jakarta", "Lombok"};
static const char *const k_nat[3][8] = {
    {"Italian", "Australian", "German", "British", "American", "French",
     "Dutch", "Russian"},
    {"Italia", "Australia", "Jerman", "Inggris", "Amerika", "Prancis",
     "Belanda", "Rusia"},
    {"italiano", "australiano", "tedesco", "inglese", "americano",
     "francese", "olandese", "russo"}};
static const char *const k_dur[3][5] = {
    {"6 months", "1 year", "2 years", "60 days", "30 days"},
    {"6 bulan", "1 tahun", "2 tahun", "60 hari", "30 hari"},
    {"6 mesi", "1 anno", "2 anni", "60 giorni", "30 giorni"}};
static const char *const k_pre[3][5] = {
    {"hi, ", "hey ", "quick question: ", "hello, ", "sorry, "},
    {"halo, ", "min, ", "kak, ", "permisi, ", "mau tanya, "},
    {"ciao, ", "salve, ", "una domanda: ", "buongiorno, ", "scusate, "}};
static const char *const k_post[3][5] = {
    {" pls", " thanks", " thx", " asap", " ??"},
    {" dong", " ya", " makasih", " kak", " gan"},
    {" grazie", " per favore", " grazie mille", " ??", " urgente"}};
static const char *const k_langs[3] = {"en", "id", "it"};

/* xoshiro-like 64-bit generator: splitmix64 is enough here */
static uint64_t rnd(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* uniform in [0, n) */
static uint32_t below(uint64_t *s, uint32_t n) {
  return (uint32_t)(((rnd(s) >> 32) * (uint64_t)n) >> 32);
}

/* probability p as a threshold on 32 bits */
static int chance(uint64_t *s, uint32_t p32) {
  return (uint32_t)(rnd(s) >> 32) < p32;
}

static const char *const *tmpls(const intent_t *in, unsigned lang) {
  return lang == 0 ? in->en : lang == 1 ? in->id : in->it;
}

/* Expand one template into dst (cap bytes); returns the length. */
static size_t expand(const char *t, unsigned lang, uint64_t *s, char *dst,
                     size_t cap) {
  size_t k = 0;
  for (const char *p = t; *p && k + 1 < cap; p++) {
    const char *fill = NULL;
    if (p[0] == '{' && p[1] && p[2] == '}') {
      if (p[1] == 'c')
        fill = k_cities[below(s, 8)];
      else if (p[1] == 'n')
        fill = k_nat[lang][below(s, 8)];
      else if (p[1] == 'd')
        fill = k_dur[lang][below(s, 5)];
    }
    if (fill) {
      size_t fl = strlen(fill);
      if (k + fl + 1 > cap)
        break;
      memcpy(dst + k, fill, fl);
      k += fl;
      p += 2;
    } else {
      dst[k++] = *p;
    }
  }
  dst[k] = '\0';
  return k;
}

/* Neighbouring keys on a QWERTY row, for "mistyped letter". */
static char neighbour(char c, uint64_t *s) {
  static const char *const rows[] = {"qwertyuiop", "asdfghjkl", "zxcvbnm"};
  for (int r = 0; r < 3; r++) {
    const char *p = strchr(rows[r], c);
    if (p) {
      size_t i = (size_t)(p - rows[r]), n = strlen(rows[r]);
      if (i == 0)
        return rows[r][1];
      if (i + 1 == n)
        return rows[r][i - 1];
      return rows[r][below(s, 2) ? i + 1 : i - 1];
    }
  }
  return c;
}

/* One typo in a random word of 4+ ASCII letters. */
static size_t typo(char *q, size_t len, size_t cap, uint64_t *s) {
  size_t starts[64], lens[64], nw = 0;
  for (size_t i = 0; i < len && nw < 64;) {
    while (i < len && !((q[i] | 32) >= 'a' && (q[i] | 32) <= 'z'))
      i++;
    size_t a = i;
    while (i < len && ((q[i] | 32) >= 'a' && (q[i] | 32) <= 'z'))
      i++;
    if (i - a >= 4) {
      starts[nw] = a;
      lens[nw++] = i - a;
    }
  }
  if (!nw)
    return len;
  uint32_t w = below(s, (uint32_t)nw);
  size_t pos = starts[w] + 1 + below(s, (uint32_t)lens[w] - 2);
  switch (below(s, 4)) {
  case 0: { /* swap with the next letter */
    char t = q[pos];
    q[pos] = q[pos + 1];
    q[pos + 1] = t;
    return len;
  }
  case 1: /* drop */
    memmove(q + pos, q + pos + 1, len - pos);
    return len - 1;
  case 2: /* double */
    if (len + 2 > cap)
      return len;
    memmove(q + pos + 1, q + pos, len - pos + 1);
    return len + 1;
  default: /* neighbouring key */
    if (q[pos] >= 'a' && q[pos] <= 'z')
      q[pos] = neighbour(q[pos], s);
    return len;
  }
}

/* Lower case, no final '?', a greeting or a tail word. */
static size_t casual(char *q, size_t len, size_t cap, unsigned lang,
                     uint64_t *s) {
  for (size_t i = 0; i < len; i++)
    if (q[i] >= 'A' && q[i] <= 'Z' && below(s, 4) != 0)
      q[i] = (char)(q[i] + 32);
  if (len && q[len - 1] == '?' && below(s, 2))
    q[--len] = '\0';
  uint32_t how = below(s, 3);
  if (how == 0) {
    const char *pre = k_pre[lang][below(s, 5)];
    size_t pl = strlen(pre);
    if (len + pl + 1 <= cap) {
      memmove(q + pl, q, len + 1);
      memcpy(q, pre, pl);
      len += pl;
    }
  } else if (how == 1) {
    const char *post = k_post[lang][below(s, 5)];
    size_t pl = strlen(post);
    if (len + pl + 1 <= cap) {
      memcpy(q + len, post, pl + 1);
      len += pl;
    }
  }
  return len;
}

int jiwa_querygen(const jiwa_querygen_opts_t *o, jiwa_qlog_t **out) {
  if (!out)
    return JIWA_EINVAL;
  *out = NULL;
  if (!o || o->size < sizeof(jiwa_querygen_opts_t) || o->n == 0 ||
      o->n > JIWA_QUERYGEN_MAX)
    return JIWA_EINVAL;
  double zs = o->zipf_s == 0 ? 1.0 : o->zipf_s;
  double typo_rate = o->typo_rate == 0 ? 0.15 : o->typo_rate;
  double casual_rate = o->casual_rate == 0 ? 0.3 : o->casual_rate;
  if (zs < 0 || zs > 10 || typo_rate < 0 || typo_rate > 1 ||
      casual_rate < 0 || casual_rate > 1)
    return JIWA_EINVAL;
  unsigned days = o->days ? o->days : 10;
  int64_t end = o->end_ts ? o->end_ts : INT64_C(1767225600);
  /* cumulative intent weights, as 32-bit thresholds */
  uint32_t cum[JIWA_QUERYGEN_INTENTS];
  double tot = 0, acc = 0;
  for (unsigned i = 0; i < JIWA_QUERYGEN_INTENTS; i++)
    tot += 1.0 / pow((double)(i + 1), zs);
  for (unsigned i = 0; i < JIWA_QUERYGEN_INTENTS; i++) {
    acc += 1.0 / pow((double)(i + 1), zs);
    cum[i] = i + 1 == JIWA_QUERYGEN_INTENTS
                 ? UINT32_MAX
                 : (uint32_t)(acc / tot * 4294967295.0);
  }
  uint32_t p_typo = (uint32_t)(typo_rate * 4294967295.0);
  uint32_t p_cas = (uint32_t)(casual_rate * 4294967295.0);
  jiwa_qlog_t *log = calloc(1, sizeof *log);
  size_t acap = o->n * 96 + 64, apos = 0;
  if (!log || !(log->q = malloc(o->n * sizeof *log->q)) ||
      !(log->arena_ = malloc(acap))) {
    jiwa_qlog_free(log);
    return JIWA_ENOMEM;
  }
  log->n = o->n;
  uint64_t s = o->seed ^ 0x6a6977612d716c67u;
  uint32_t users = (uint32_t)(o->n / 5 + 1);
  int64_t span = (int64_t)days * 86400;
  size_t *offs = malloc(o->n * sizeof *offs);
  if (!offs) {
    jiwa_qlog_free(log);
    return JIWA_ENOMEM;
  }
  for (size_t i = 0; i < o->n; i++) {
    uint32_t r = (uint32_t)(rnd(&s) >> 32), intent = 0;
    while (r > cum[intent])
      intent++;
    uint32_t lr = below(&s, 10);
    unsigned lang = lr < 5 ? 0 : lr < 8 ? 1 : 2;
    const char *const *t = tmpls(&k_intents[intent], lang);
    unsigned nt = 0;
    while (nt < NT && t[nt])
      nt++;
    char q[256];
    size_t len = expand(t[below(&s, nt)], lang, &s, q, 200);
    if (chance(&s, p_cas))
      len = casual(q, len, sizeof q, lang, &s);
    if (chance(&s, p_typo))
      len = typo(q, len, sizeof q, &s);
    if (apos + len + 1 > acap) {
      char *na = realloc(log->arena_, acap * 2);
      if (!na) {
        free(offs);
        jiwa_qlog_free(log);
        return JIWA_ENOMEM;
      }
      log->arena_ = na;
      acap *= 2;
    }
    memcpy(log->arena_ + apos, q, len + 1);
    offs[i] = apos;
    apos += len + 1;
    jiwa_qlog_entry_t *e = &log->q[i];
    e->len = len;
    e->intent = intent;
    e->lang = k_langs[lang];
    /* evenly through the span, non-decreasing */
    e->ts = end - span + (int64_t)((double)span * ((double)i + 0.5) /
                                   (double)o->n);
    /* users: a few heavy askers, many occasional ones */
    uint32_t u = below(&s, users);
    e->user = below(&s, 2) ? u : u / 16;
  }
  for (size_t i = 0; i < o->n; i++)
    log->q[i].text = log->arena_ + offs[i];
  free(offs);
  *out = log;
  return 0;
}

void jiwa_qlog_free(jiwa_qlog_t *log) {
  if (!log)
    return;
  free(log->q);
  free(log->arena_);
  free(log);
}

const char *jiwa_querygen_intent_name(uint32_t intent) {
  return intent < JIWA_QUERYGEN_INTENTS ? k_intents[intent].name : "?";
}
