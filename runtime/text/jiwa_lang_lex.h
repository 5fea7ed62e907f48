/* Hand-written lexicons of jiwa_lang.c (included once, from there).
 *
 * One string per language and class, words separated by spaces, written
 * naturally (accents and case are normalised when the table is built).
 * A leading '!' marks a strong word (weight 2: distinctive and frequent in
 * chat), a trailing apostrophe an elided article or preposition ("dell'"),
 * looked up on the part of a token before its apostrophe.
 * FUNC lists are function words (also the embedder's stopwords), CHAT lists
 * common words of everyday messages. A word may be in several languages.
 */

/* ---- English ---- */
static const char LEX_EN_FUNC[] =
    "the a an and or but if of to in on at for with from by about as into "
    "than then that this these those there here it its is are was were be "
    "been being am do does did done have has had having will would shall "
    "should can could may might must not no i me my mine we us our you your "
    "yours he him his she her they them their what which who whom whose when "
    "where why how all any some each every much many more most few less such "
    "own so too very just only also even still yet again ever never always "
    "often already because while although though until since before after "
    "above below between through during without within against up down out "
    "off over under once !don't !doesn't !didn't !isn't !aren't !wasn't "
    "!can't !won't !i'm !i've !i'll !i'd !you're !we're !they're !it's "
    "!that's !there's !let's !what's whats im dont cant wont didnt doesnt "
    "isnt ive youre thats anyone someone something anything everything "
    "nothing";
static const char LEX_EN_CHAT[] =
    "!thanks !thank !please hi hey hello yeah yep nope sorry sure great cool "
    "awesome nice good morning night evening guys lol need want know think "
    "help long take takes taking much cost costs get got make go going work "
    "working live living buy rent pay paid time year years month months day "
    "days week weeks people thing things question questions problem money "
    "house home company business new old best better right wrong really "
    "maybe actually well like love hate tell say said see look find "
    "stay move moving start open close apply applied renew need needed "
    "wait waiting still again already soon today tomorrow yesterday "
    "price cheap expensive fast slow easy hard possible process processing "
    "document documents office friend wife husband kids children family "
    "beach beaches island food restaurant where's how's who's hows "
    "please pls thx  thanks a lot welcome bye goodbye cheers "
    "come mate dude buddy wow omg yes  alright fine happy sad tired "
    "confused worried sure exactly just think thought feel feeling "
    "should shouldn't couldn't wouldn't would've tips advice recommend "
    "cheapest fastest difference between which option options rules "
    "allowed required requirements need get permit license licence "
    "hire lawyer accountant agent landlord neighbour neighbor rent lease "
    "buy sell property land villa house apartment many much per month "
    "long-term short-term extend extension expire expired expires fair "
    "enough definitely perfect timing";

/* ---- Indonesian (formal and informal) ---- */
static const char LEX_ID_FUNC[] =
    "yang dan di ke kan dari ini itu dengan untuk pada adalah akan tidak tak "
    "bukan sudah telah belum masih juga saja hanya bisa dapat harus boleh "
    "mau ingin ada apa siapa kapan mana dimana kenapa mengapa bagaimana "
    "berapa karena jika kalau agar supaya atau tetapi tapi namun serta oleh "
    "seperti sangat lebih paling saya aku kamu anda dia mereka kami kita "
    "kalian nya sih dong deh kok nih tuh lah kah ya yah ga gak !nggak "
    "!enggak ngga engga tdk !udah udh blm !gue gua gw lo lu loe elo !aja "
    "!banget bgt !gimana gmn gak kak kakak pak bu bang mas mbak mba om "
    "tante sama jadi kayak gitu begitu gini begini emang memang soalnya "
    "pokoknya kayaknya sepertinya bagi terhadap tentang antara sejak "
    "sampai hingga ketika saat setelah sebelum selama tanpa melalui lewat "
    "para sebuah seorang setiap semua beberapa banyak sedikit lagi pun "
    "apakah bagaimanakah mengapa dimanakah sy sya km gpp yg dgn utk krn "
    "tp sm jd kalo klo gimana gmna knp";
static const char LEX_ID_CHAT[] =
    "!makasih !terima !kasih !trims !terimakasih selamat pagi siang sore "
    "malam tolong mohon maaf permisi halo hai iya sip siap mantap !wkwk "
    "!wkwkwk wk malu senang sedih capek bingung takut pengen pingin bikin "
    "pakai pake urus ngurus mengurus biaya harga lama bulan tahun hari "
    "minggu orang rumah tanah kerja bekerja bayar membayar sewa menyewa "
    "beli membeli jual menjual tinggal izin ijin surat perusahaan usaha "
    "kantor bagus baik benar salah cepat murah mahal baru dulu nanti "
    "sekarang besok kemarin tadi terus langsung buat sebenarnya berapa "
    "perlu butuh tanya nanya bertanya jawab kabar apa kabar gimana "
    "cara caranya syarat persyaratan dokumen berkas proses lamanya "
    "bikinnya urusnya bayarnya harganya biayanya gampang susah ribet "
    "keluarga istri suami anak teman pantai makan enak cantik indah "
    "mas mbak bapak ibu adik kakak dapat dapet udh lg bgt aja juga "
    "nggak ngerti ngerti tahu tau kasih mending banget sekali kalo "
    "mohon info infonya dibantu bantu bantuan tolongin kapan-kapan "
    "mana berapaan dimana gimanaa tanyain nunggu tunggu menunggu "
    "perpanjang perpanjangan memperpanjang diperpanjang habis kadaluarsa "
    "pengajuan mengajukan diajukan ditolak diterima keluar masuk "
    "pindah datang pergi pulang bisa-bisa hehe haha lanjut astaga duh";

/* ---- Italian ---- */
static const char LEX_IT_FUNC[] =
    "il lo la i gli le un uno una un' l' di a da in con su per tra fra del "
    "dello della dei degli delle al allo alla ai agli alle dal dallo dalla "
    "dai dagli dalle nel nello nella nei negli nelle sul sullo sulla sui "
    "sugli sulle dell' all' nell' sull' dall' c' d' s' m' t' v' e ed o "
    "oppure ma però anche !che chi cui non più già ancora sempre mai molto "
    "poco tanto troppo quanto quanta quanti quante quale quali come dove "
    "quando !perché cosa io tu lui lei noi voi loro mi ti ci vi si ne me te "
    "ce ve se mio mia miei mie tuo tua tuoi tue suo sua suoi sue nostro "
    "nostra nostri vostro vostra !sono sei è siamo siete ho hai ha abbiamo "
    "avete hanno essere avere fare posso puoi può possiamo devo deve devi "
    "dobbiamo voglio !vorrei vuoi vuole questo questa questi queste quello "
    "quella quelli quelle qui qua lì là allora quindi poi dopo prima adesso "
    "ora oggi domani ieri sì no po' perciò invece senza dentro fuori sopra "
    "sotto verso circa ecco cioè mentre finché ogni altro altra altri "
    "stesso stessa qualcosa qualcuno nessuno niente nulla tutto tutti "
    "tutta tutte";
static const char LEX_IT_CHAT[] =
    "!grazie !ciao !buongiorno !buonasera !buonanotte prego scusa scusi "
    "salve favore perfetto va bene benissimo bello bella grande !costa "
    "costo costi !quanto tempo anno anni mese mesi giorno giorni settimana "
    "settimane casa lavoro lavorare persone gente nuovo nuova vero certo "
    "forse davvero proprio solo tipo boh dai magari mille aiuto aiutare "
    "aiutami sapere so sai sa capito capisco fatto detto andare comprare "
    "affittare affitto pagare pagato aprire società azienda permesso "
    "documenti documento ufficio serve servono bisogno vorrei volevo "
    "chiedere domanda domande informazioni info spiegare spiegarmi "
    "sapete potete potreste potresti riesco riesci tranquillo ok grazie "
    "mille carissimo caro cara amico amica amici famiglia moglie marito "
    "figli bambini spiaggia mare mangiare cibo buono buona ottimo bravo "
    "brava scusate salve arrivederci tanto tempo quanto tempo ci vuole "
    "vuole rinnovare rinnovo scade scaduto scadenza pratica pratiche "
    "commercialista avvocato notaio agenzia prezzo caro economico veloce "
    "lento facile difficile possibile stare restare trasferirmi "
    "trasferire vivere abitare comprare vendere terreno villa appartamento "
    "mensile annuale dichiarazione ragazzi raga tutto ok bene grazie "
    "allora comunque praticamente nessun figurati adoro";

/* ---- only there to recognise them as "unknown" ---- */
static const char LEX_DE[] =
    "der die das und ist ich nicht ein eine einen einem zu mit für auf sind "
    "wie  wir sie es wo wann warum kann können möchte bitte danke hallo "
    "ja nein auch noch schon aber oder wenn dass den dem des von bei nach "
    "über gut sehr viel kostet wieviel lange brauche habe haben sein bin "
    "bist mein meine kein keine guten tag morgen vielen dank mich mir dich "
    "dir uns euch wird werden wurde hier dort jetzt heute gibt ob zum zur "
    "vom   um durch gegen ohne sich  nur doch mal";
static const char LEX_FR[] =
    "le la les un une des du de et est sont je tu il elle nous vous ils "
    "elles pas ne que qui quoi pour avec dans sur par au aux ce cette ces "
    "mon ma mes votre vos notre bonjour merci oui non combien coûte "
    "pourquoi comment quand où ou très bien beaucoup faire avoir être suis "
    "es avez voudrais veux peux besoin plait c' j' qu' n' s' d' l' c'est "
    "j'ai salut bonsoir aussi mais donc alors ici peut faut y en";
static const char LEX_ES[] =
    "el la los las un una unos unas y o de del en con por para que qué es "
    "son está esta estoy estás hola gracias sí no cómo como cuánto cuanto "
    "cuesta dónde donde cuándo porque muy mucho pero también yo tú él ella "
    "nosotros ustedes usted mi mis su sus necesito quiero puedo tengo hay "
    "buenos días buenas tardes noches favor al lo le se me te nos este "
    "esto eso ese hacer tiempo cuánto aquí ahora";
static const char LEX_PT[] =
    "o a os as um uma de  da dos das em no na nos nas e é com por para "
    "que não sim obrigado obrigada olá bom  quanto custa onde quando "
    "porque muito mas também eu você ele ela nós preciso quero posso tenho "
    "está estou são isso isto aqui agora fazer tempo meu minha seu sua";
static const char LEX_NL[] =
    "de het een en  ik je jij wij  ze hij zij niet wel van voor met op "
    "aan  dat die wat hoe waar wanneer waarom dank bedankt alstublieft "
    "hallo goedemorgen ja nee ook nog maar  als kan wil moet hebben heb "
    "heeft zijn ben bent veel kost hoeveel lang mijn jouw ons hier daar nu "
    "vandaag graag dit er naar bij";
static const char LEX_JV[] =
    "kowe sampeyan panjenengan jenengan piye pripun ora mboten boten nggih "
    "inggih wis uwis sampun durung arep ajeng karo kaliyan iki niki kuwi "
    "niku ning neng lan nanging matur nuwun suwun sugeng enjing monggo wes "
    " wae ae  seng ngerti ana onok opo endi ngendi saiki mengko dhewe "
    "apik akeh sithik mangan turu  teka omah duwe kudu iso  ngopo "
    "lapo piro pira sopo sapa kabeh ojo dalem nopo sakniki mawon saged "
    "  ";

/* Domain words shared by every language: skipped, neither lexicon nor
 * trigram evidence. */
static const char LEX_NEUTRAL[] =
    "visa visas kitas kitap voa evoa pt pma npwp nib oss bpjs kbli rptka "
    "imta bali jakarta ubud canggu seminyak denpasar lombok sanur uluwatu "
    "kuta indonesia indonesian pajak tasse tax taxes villa ok okay oke okk "
    "wa whatsapp email online rupiah rp idr usd eur euro pph ppn spt imb "
    "pbg shm hgb hak  b211a c312 e33g e28a kitas kitap visti visto "
    "investor remote nomad digital sponsor bitcoin crypto zoom google "
    "haha hahaha hehe hihi lol xd wow";
